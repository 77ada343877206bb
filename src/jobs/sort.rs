//! `pikernels sort`: distributed sample sort (issue 4). Not yet implemented.

use super::UsageError;
use crate::cli::SortArgs;

pub struct Sort;

impl Sort {
    pub fn new(_a: &SortArgs) -> Result<Sort, UsageError> {
        Err(UsageError("sort is not implemented yet".into()))
    }
}
