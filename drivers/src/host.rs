//! The `host` driver: the container shares the host's network namespace.
//! Nothing is built; a sandbox joined to `host` uses the host's netns path
//! (the daemon decides that), and publishing ports is meaningless.

use async_trait::async_trait;

use crate::{
    check_known_options, Driver, EndpointInfo, EndpointSpec, JoinInfo, NetworkSpec, Result,
    SandboxSpec,
};

#[derive(Debug, Default)]
pub struct HostDriver;

#[async_trait]
impl Driver for HostDriver {
    fn name(&self) -> &'static str {
        "host"
    }
    fn validate_network(&self, spec: &NetworkSpec) -> Result<()> {
        check_known_options("host", &spec.options, &[])
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
    async fn join(
        &self,
        _n: &NetworkSpec,
        _e: &EndpointSpec,
        _s: &SandboxSpec,
    ) -> Result<JoinInfo> {
        Ok(JoinInfo::default())
    }
    async fn leave(&self, _n: &NetworkSpec, _e: &EndpointSpec, _s: &SandboxSpec) -> Result<()> {
        Ok(())
    }
}
