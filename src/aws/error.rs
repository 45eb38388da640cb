//! AWS failures as lmi reports them: which service, operation and resource, what AWS said, and
//! what to do about it. Every `aws::` method returns these, never a raw SDK error.

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use miette::Diagnostic;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AccessDenied,
    Throttled,
    /// The resource is in use or in the wrong state (DependencyViolation, ResourceConflict…).
    Conflict,
    /// The request was refused as invalid (a bad parameter).
    Invalid,
    /// No credentials, or credentials AWS rejects.
    Credentials,
    /// AWS could not be reached.
    Unreachable,
    Other,
}

#[derive(Debug, Clone)]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    /// What lmi was working on, e.g. `subnet.private-a` or a role name.
    pub resource: String,
    /// AWS's error code, e.g. `DependencyViolation`.
    pub code: Option<String>,
    pub message: String,
    pub kind: ErrorKind,
}

impl AwsError {
    pub fn new<E, R>(
        service: &'static str,
        operation: &'static str,
        resource: impl Into<String>,
        error: SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let (code, message, kind) = match &error {
            SdkError::ServiceError(e) => {
                let err = e.err();
                let code = err.code().map(str::to_string);
                let message = err
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| chain(&error));
                let kind = classify(code.as_deref().unwrap_or(""));
                (code, message, kind)
            }
            _ => {
                let message = chain(&error);
                // Missing credentials surface as a failure to sign or dispatch the request.
                let kind = if message.contains("credentials") || message.contains("identity") {
                    ErrorKind::Credentials
                } else if matches!(
                    error,
                    SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
                ) {
                    ErrorKind::Unreachable
                } else {
                    ErrorKind::Other
                };
                (None, message, kind)
            }
        };
        AwsError {
            service,
            operation,
            resource: resource.into(),
            code,
            message,
            kind,
        }
    }

    /// An error lmi detects itself while talking to AWS (e.g. a resource stuck in a state).
    pub fn lmi(
        service: &'static str,
        operation: &'static str,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        AwsError {
            service,
            operation,
            resource: resource.into(),
            code: None,
            message: message.into(),
            kind: ErrorKind::Other,
        }
    }

    /// Not found as `None`, not an error: a thing just listed that went away before it was
    /// read (a delete in progress), or a thing to delete that is already gone.
    pub fn unless_gone<T>(result: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    pub fn is_conflict(&self) -> bool {
        self.kind == ErrorKind::Conflict
    }
}

/// An error and its sources, each once, in plain words (the SDK's Debug dump helps nobody).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// AWS error codes by what lmi does about them. Codes differ per service for the same idea.
fn classify(code: &str) -> ErrorKind {
    match code {
        c if c.ends_with("NotFound")
            || c.ends_with("NotFoundException")
            || c == "NoSuchEntity"
            || c.starts_with("InvalidAllocationID.NotFound") =>
        {
            ErrorKind::NotFound
        }
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AuthFailure"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException" => {
            if matches!(
                code,
                "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation"
            ) {
                ErrorKind::AccessDenied
            } else {
                ErrorKind::Credentials
            }
        }
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "ThrottledException" => ErrorKind::Throttled,
        "DependencyViolation"
        | "ResourceConflictException"
        | "ResourceInUseException"
        | "DeleteConflict"
        | "IncorrectState"
        | "InvalidGatewayID.NotFound" => ErrorKind::Conflict,
        c if c.starts_with("InvalidParameter")
            || c.starts_with("Validation")
            || c.ends_with("Malformed") =>
        {
            ErrorKind::Invalid
        }
        _ => ErrorKind::Other,
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Errors lmi finds itself (a wait that timed out, no region) name no AWS operation.
        if self.service == "lmi" {
            if !self.resource.is_empty() {
                write!(f, "`{}`: ", self.resource)?;
            }
            return f.write_str(&self.message);
        }
        write!(
            f,
            "{}:{} for `{}` failed: ",
            self.service, self.operation, self.resource
        )?;
        if let Some(code) = &self.code {
            write!(f, "{code}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for AwsError {}

impl Diagnostic for AwsError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let kind = match self.kind {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid_request",
            ErrorKind::Credentials => "credentials",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Other => "failed",
        };
        Some(Box::new(format!("lmi::aws::{kind}")))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let help = match self.kind {
            ErrorKind::AccessDenied => format!(
                "the AWS identity lmi runs as needs `{}:{}` on `{}`; see the README's IAM policy",
                self.service.to_lowercase(),
                self.operation,
                self.resource
            ),
            ErrorKind::Credentials => String::from(
                "AWS rejected or found no credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and check they are current",
            ),
            ErrorKind::Unreachable => String::from(
                "AWS did not answer: check the network, and AWS_ENDPOINT_URL if you set it",
            ),
            ErrorKind::Throttled => String::from(
                "AWS kept throttling after lmi's retries; run again in a minute, or lower concurrency with --parallelism",
            ),
            _ => return None,
        };
        Some(Box::new(help))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_codes_across_services() {
        assert_eq!(classify("InvalidVpcID.NotFound"), ErrorKind::NotFound);
        assert_eq!(classify("NoSuchEntity"), ErrorKind::NotFound);
        assert_eq!(classify("ResourceNotFoundException"), ErrorKind::NotFound);
        assert_eq!(classify("DependencyViolation"), ErrorKind::Conflict);
        assert_eq!(classify("DeleteConflict"), ErrorKind::Conflict);
        assert_eq!(classify("RequestLimitExceeded"), ErrorKind::Throttled);
        assert_eq!(classify("UnauthorizedOperation"), ErrorKind::AccessDenied);
        assert_eq!(classify("InvalidClientTokenId"), ErrorKind::Credentials);
        assert_eq!(classify("InvalidParameterValue"), ErrorKind::Invalid);
    }
}
