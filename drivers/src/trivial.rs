//! The drivers that build nothing in the kernel:
//! - `null` (the `none` network): the sandbox keeps only its loopback; endpoints exist
//!   as objects but have no interface and no addresses.
//! - `host`: the container shares the host's network namespace; the daemon decides
//!   that (a host-network sandbox uses the host's netns path) and there is nothing to
//!   build or publish.

use async_trait::async_trait;

use crate::{
    check_known_options, Driver, EndpointInfo, EndpointSpec, JoinInfo, NetworkSpec, Result,
    SandboxSpec,
};

macro_rules! trivial_driver {
    ($(#[$doc:meta])* $ty:ident, $name:literal) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        pub struct $ty;

        #[async_trait]
        impl Driver for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn validate_network(&self, spec: &NetworkSpec) -> Result<()> {
                check_known_options($name, &spec.options, &[])
            }
            fn needs_ipam(&self) -> bool {
                false
            }
            async fn create_network(&self, _spec: &NetworkSpec) -> Result<()> {
                Ok(())
            }
            async fn delete_network(&self, _spec: &NetworkSpec) -> Result<()> {
                Ok(())
            }
            async fn create_endpoint(&self, _n: &NetworkSpec, _e: &EndpointSpec) -> Result<EndpointInfo> {
                Ok(EndpointInfo::default())
            }
            async fn delete_endpoint(&self, _n: &NetworkSpec, _e: &EndpointSpec) -> Result<()> {
                Ok(())
            }
            async fn join(&self, _n: &NetworkSpec, _e: &EndpointSpec, _s: &SandboxSpec) -> Result<JoinInfo> {
                Ok(JoinInfo::default())
            }
            async fn leave(&self, _n: &NetworkSpec, _e: &EndpointSpec, _s: &SandboxSpec) -> Result<()> {
                Ok(())
            }
        }
    };
}

trivial_driver!(
    /// The `null` driver: loopback only.
    NullDriver,
    "null"
);
trivial_driver!(
    /// The `host` driver: the host's own namespace.
    HostDriver,
    "host"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(opt: Option<(&str, &str)>) -> NetworkSpec {
        NetworkSpec {
            id: "0".repeat(64),
            name: "n".into(),
            options: opt
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ipv4: vec![],
            ipv6: vec![],
            internal: false,
            enable_ipv6: false,
        }
    }

    #[test]
    fn refuse_options_and_need_no_ipam() {
        for d in [&NullDriver as &dyn Driver, &HostDriver] {
            assert!(!d.needs_ipam());
            assert!(d.validate_network(&spec(None)).is_ok());
            let e = d.validate_network(&spec(Some(("x", "1")))).unwrap_err();
            assert!(e.to_string().contains("does not support option"), "{e}");
        }
        assert_eq!(NullDriver.name(), "null");
        assert_eq!(HostDriver.name(), "host");
    }
}
