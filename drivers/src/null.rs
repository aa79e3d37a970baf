//! The `null` driver (`none` network): the sandbox gets only its loopback.
//! Endpoints exist as objects but have no interface and no addresses.

use async_trait::async_trait;

use crate::{
    check_known_options, Driver, EndpointInfo, EndpointSpec, JoinInfo, NetworkSpec, Result,
    SandboxSpec,
};

#[derive(Debug, Default)]
pub struct NullDriver;

#[async_trait]
impl Driver for NullDriver {
    fn name(&self) -> &'static str {
        "null"
    }
    fn validate_network(&self, spec: &NetworkSpec) -> Result<()> {
        check_known_options("null", &spec.options, &[])
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
