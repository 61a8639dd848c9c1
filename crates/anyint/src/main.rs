//! The `anyint` binary: all logic lives in the library; this only hands over to the CLI.

// A gateway allocates many small, short-lived buffers on every request across worker threads;
// glibc's allocator contends on its arena locks there (measured with perf under load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    anyint::cli::main()
}
