//! `modelstage inspect LIB`: what the loader sees in a library, without
//! serving. Exits non-zero, saying exactly why, for a library that is not a
//! usable stage; when the hooks it misses are there under C++ names, it says
//! that they need `extern "C"`.
//!
//! Unlike `serve`, whose server process only ever reads what its workers
//! report, `inspect` loads the library into its own process: the library's
//! initialisers (static constructors) run here, and one that aborts ends
//! `inspect` with it.

use std::path::{Path, PathBuf};

use object::{Object, ObjectSymbol};

use crate::loader::{LoadError, LoadedStage};

/// The ABI's hook names, as the loader looks them up.
const HOOKS: [&str; 6] = [
    modelstage_abi::SYMBOL_MODEL_FN,
    modelstage_abi::SYMBOL_INPUT_FN,
    modelstage_abi::SYMBOL_PREDICT_FN,
    modelstage_abi::SYMBOL_OUTPUT_FN,
    modelstage_abi::SYMBOL_TRANSFORM_FN,
    modelstage_abi::SYMBOL_TRAIN_FN,
];

/// `modelstage inspect` arguments.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The stage library to inspect. It is loaded into this process, so its
    /// initialisers (static constructors) run.
    pub library: PathBuf,
}

/// Why `inspect` refused a library: the loader's reason, and for a missing hook or descriptor
/// the C++ hint when the hooks are there under mangled names. `main` prints it.
#[derive(Debug, thiserror::Error)]
#[error("modelstage inspect: {load}{}", hint_line(.hint))]
pub struct InspectError {
    /// Why the loader refused the library.
    pub load: LoadError,
    /// How to fix hooks that only have C++ names.
    pub hint: Option<String>,
}

/// The hint as a second line of the message, or nothing.
fn hint_line(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|hint| format!("\nmodelstage inspect: {hint}"))
        .unwrap_or_default()
}

/// Prints the descriptor and hooks; `Err` says why the library is not a usable stage.
pub fn run(args: InspectArgs) -> Result<(), InspectError> {
    let stage = LoadedStage::open(&args.library).map_err(|load| {
        let hint = match load {
            LoadError::MissingHook { .. } | LoadError::NoDescriptor { .. } => cxx_hint(&args.library),
            _ => None,
        };
        InspectError { load, hint }
    })?;
    let info = stage.info();
    println!("library:    {}", info.path.display());
    println!("stage:      {} {}", info.name, info.version);
    println!(
        "abi:        {}.{} (this modelstage: {}.{})",
        info.abi_major,
        info.abi_minor,
        modelstage_abi::MODELSTAGE_ABI_MAJOR,
        modelstage_abi::MODELSTAGE_ABI_MINOR
    );
    println!("threading:  {}", info.threading.as_str());
    let declared = |n: u32| {
        if n == 0 {
            "not declared".to_string()
        } else {
            n.to_string()
        }
    };
    println!(
        "execution:  MaxConcurrentTransforms {}, BatchStrategy {}, MaxPayloadInMB {}",
        declared(info.max_concurrent_transforms),
        info.batch_strategy.unwrap_or("not declared"),
        declared(info.max_payload_in_mb)
    );
    let hooks: Vec<String> = stage
        .hook_names()
        .into_iter()
        .map(|(name, present)| format!("{name} {}", if present { "yes" } else { "no" }))
        .collect();
    println!("hooks:      {}", hooks.join(", "));
    Ok(())
}

/// When a hook the loader missed is exported under a C++ (Itanium-mangled)
/// name, such as `_Z8model_fn15ModelstageBytesP15ModelstageValueP15ModelstageError`,
/// the library was compiled as C++ without `extern "C"` declarations: says
/// so and how to fix it. `None` when no such symbol is found or the file
/// cannot be read as ELF (the loader's error then stands alone).
fn cxx_hint(library: &Path) -> Option<String> {
    let file = std::fs::File::open(library).ok()?;
    // Reads only the parts of the file the symbol table needs.
    let cache = object::ReadCache::new(file);
    let elf = object::File::parse(&cache).ok()?;
    let mut found: Vec<(&str, String)> = Vec::new();
    for symbol in elf.dynamic_symbols().filter(|s| s.is_definition()) {
        let Ok(name) = symbol.name() else { continue };
        if let Some(hook) = mangled_hook(name) {
            if !found.iter().any(|(h, _)| *h == hook) {
                found.push((hook, name.to_string()));
            }
        }
    }
    found.sort_by_key(|(hook, _)| HOOKS.iter().position(|h| h == hook));
    let (_, example) = found.first()?;
    // A symbol name is the library's own text; a bounded excerpt is enough.
    let example: String = example.chars().take(120).collect();
    let hooks: Vec<&str> = found.iter().map(|(h, _)| *h).collect();
    Some(format!(
        "{} exports {} only under C++ names (e.g. {example}), and the loader looks hooks up by \
         their C names: declare them extern \"C\" (#define MODELSTAGE_DECLARE_HOOKS before \
         #include \"modelstage.h\", which declares every hook and the modelstage_abi descriptor in \
         extern \"C\", or wrap the definitions in extern \"C\" {{ ... }})",
        library.display(),
        hooks.join(", ")
    ))
}

/// The ABI hook a C++-mangled symbol name carries: `_Z` and then the hook's
/// name as a length-prefixed source name (`8model_fn`), not part of a longer one.
fn mangled_hook(symbol: &str) -> Option<&'static str> {
    let rest = symbol.strip_prefix("_Z")?;
    HOOKS.into_iter().find(|hook| {
        let source_name = format!("{}{hook}", hook.len());
        rest.match_indices(&source_name).any(|(at, _)| {
            // The digits before must be the whole length, not the tail of a longer one.
            !rest[..at].ends_with(|c: char| c.is_ascii_digit())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::mangled_hook;

    #[test]
    fn finds_hooks_in_itanium_names_only() {
        assert_eq!(
            mangled_hook("_Z8model_fn15ModelstageBytesP15ModelstageValueP15ModelstageError"),
            Some("model_fn")
        );
        assert_eq!(mangled_hook("_ZN5stage12transform_fnEPKv"), Some("transform_fn"));
        assert_eq!(mangled_hook("model_fn"), None);
        assert_eq!(mangled_hook("_Z9xmodel_fnv"), None);
        assert_eq!(mangled_hook("_Z18model_fn_helper_xxv"), None);
    }
}
