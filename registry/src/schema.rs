//! JSON Schema validation of submitted documents, against the schemas in `schemas/`.
//!
//! The schemas are compiled into the binary, so a node validates exactly what its
//! release documents; [`SchemaError`] names the JSON pointer at fault.

use std::sync::LazyLock;

use jsonschema::Validator;
use serde_json::Value;

/// A document that does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct SchemaError {
    /// JSON pointer (RFC 6901) to the offending member; empty for the whole document.
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

fn compile(text: &str) -> Result<Validator, String> {
    let schema: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| e.to_string())
}

static OPERATION: LazyLock<Result<Validator, String>> =
    LazyLock::new(|| compile(include_str!("../../schemas/operation.schema.json")));

/// Validates a signed operation against `schemas/operation.schema.json`.
pub(crate) fn validate_operation(document: &Value) -> Result<(), SchemaError> {
    validate(&OPERATION, document)
}

fn validate(validator: &Result<Validator, String>, document: &Value) -> Result<(), SchemaError> {
    let validator = validator.as_ref().map_err(|e| SchemaError {
        pointer: String::new(),
        message: format!("the schema itself does not compile: {e}"),
    })?;
    match validator.iter_errors(document).next() {
        None => Ok(()),
        Some(error) => Err(SchemaError {
            pointer: error.instance_path().to_string(),
            message: error.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_schema_compiles() {
        assert!(OPERATION.is_ok(), "{:?}", OPERATION.as_ref().err());
    }
}
