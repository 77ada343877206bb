//! [`Invalid`]: parameters a kernel cannot run with.

/// Parameters a kernel cannot run with: which one (by its field's name,
/// when one is to blame) and what is wrong. The kernels crate knows no
/// command line; the CLI turns the field into its flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The parameter field at fault, if one is.
    pub param: Option<&'static str>,
    /// What is wrong, completing a sentence about the field when there is one.
    pub problem: String,
}

impl Invalid {
    /// The field `param` is at fault.
    pub(crate) fn param(param: &'static str, problem: String) -> Invalid {
        Invalid { param: Some(param), problem }
    }

    /// The parameters together are at fault, no one field.
    pub(crate) fn whole(problem: String) -> Invalid {
        Invalid { param: None, problem }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.param {
            Some(param) => write!(f, "{param} {}", self.problem),
            None => f.write_str(&self.problem),
        }
    }
}
