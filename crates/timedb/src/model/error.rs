//! The model's one error: a field that failed to parse, named so the HTTP edge can say
//! which field was wrong (422 naming the field).

/// A value that could not be turned into a domain type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ModelError {
    /// The field's name as the client spelled it (`value_rows[3].valid_time`).
    pub field: String,
    /// A human sentence saying what is wrong with it.
    pub message: String,
    /// Machine-readable code for the HTTP body (`INVALID_FIELD` unless more specific).
    pub code: &'static str,
}

impl ModelError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into(), code: "INVALID_FIELD" }
    }

    /// The same error under a more specific machine code (`DUPLICATE_ROW`).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    /// The same error, reported under a longer field path (`value_rows[3]` + `.valid_time`).
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() { prefix.to_owned() } else { format!("{prefix}.{}", self.field) };
        self
    }
}
