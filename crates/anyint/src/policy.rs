//! Policy: may this key do this? Today that is model entitlement; rate limits and quotas join
//! here, each as a plain function the gateway calls in a visible order.

pub mod entitlement;
