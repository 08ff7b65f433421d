//! Registry TOML: parsed and validated; every problem must come back as
//! `registry_invalid` with its path, never a panic or a hang. A registry that
//! loads finds each of its operations by name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use startgate_core::Registry;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Registry::from_toml_str(text) {
        Ok(registry) => {
            for operation in registry.operations() {
                assert!(registry.operation(&operation.name).is_some());
            }
        }
        Err(err) => assert_eq!(err.code().as_str(), "registry_invalid", "{err}"),
    }
});
