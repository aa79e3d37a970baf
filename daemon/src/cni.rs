//! The daemon side of `netd-cni`: `POST /cni` runs one CNI command (ADD, DEL, CHECK,
//! GC, STATUS) against the controller. (Scaffold: filled in by the CNI work.)

use std::sync::Arc;

use plugin_api::rest;

use crate::controller::Controller;
use crate::error::{Error, Result};

/// Run one CNI call; Ok is the JSON to return with HTTP 200.
pub async fn handle(_ctl: &Arc<Controller>, _call: rest::CniCall) -> Result<serde_json::Value> {
    Err(Error::bad("CNI is not wired yet"))
}
