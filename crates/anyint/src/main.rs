//! The `anyint` binary: all logic lives in the library; this only hands over to the CLI.

// A gateway allocates many small, short-lived buffers on every request across worker threads;
// glibc's allocator contends on its arena locks there (measured with perf under load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Where the kernel's transparent huge pages are "always" on, each of mimalloc's aligned
    // arenas is backed by 2 MiB pages as soon as a thread touches it: measured, 32 MB resident
    // at idle instead of 22, and about 110 MB instead of 88 under c32 load, at the same CPU
    // per request. Set first, before the runtime's threads allocate. Allocations made before
    // `main` are not covered, which is why mimalloc is built with `no_thp`: its arena, reserved
    // then, no longer asks for huge pages itself (two 2 MiB pages at idle where THP is
    // `madvise`).
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    anyint::cli::main()
}
