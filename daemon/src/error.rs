//! The controller's error: a category the caller can act on (libnetwork's BadRequest /
//! NotFound / Forbidden kinds) and a message. The REST layer maps categories to statuses.

use drivers::DriverError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    NotFound,
    Conflict,
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: Kind,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn bad(m: impl Into<String>) -> Self {
        Error {
            kind: Kind::BadRequest,
            message: m.into(),
        }
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Error {
            kind: Kind::NotFound,
            message: m.into(),
        }
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Error {
            kind: Kind::Conflict,
            message: m.into(),
        }
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Error {
            kind: Kind::Internal,
            message: m.into(),
        }
    }
    pub fn status(&self) -> u16 {
        match self.kind {
            Kind::BadRequest => 400,
            Kind::NotFound => 404,
            Kind::Conflict => 409,
            Kind::Unavailable => 503,
            Kind::Internal => 500,
        }
    }
}

impl From<DriverError> for Error {
    fn from(e: DriverError) -> Self {
        let kind = match &e {
            DriverError::InvalidArgument(_) | DriverError::NotSupported(_) => Kind::BadRequest,
            DriverError::Conflict(_) => Kind::Conflict,
            DriverError::NotFound(_) => Kind::NotFound,
            _ => Kind::Internal,
        };
        Error {
            kind,
            message: e.to_string(),
        }
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        Error::internal(e.to_string())
    }
}
