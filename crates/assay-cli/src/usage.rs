//! Usage and configuration errors: the command line or the client's configuration is wrong, so nothing was
//! asked of the server. They exit with code 2; a request or operation that failed at run time exits with 3.

use std::fmt;

#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Returns a [`Usage`] error from the enclosing function, formatted like `format!`.
#[macro_export]
macro_rules! usage {
    ($($t:tt)*) => {
        return Err($crate::usage::Usage(format!($($t)*)).into())
    };
}
