//! `modelstage inspect LIB`: what the loader sees in a library, without
//! serving. Exits non-zero, saying exactly why, for a library that is not a
//! usable stage.

use std::path::PathBuf;

use crate::loader::LoadedStage;

/// `modelstage inspect` arguments.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The stage library to inspect.
    pub library: PathBuf,
}

/// Prints the descriptor and hooks; returns the exit code.
pub fn run(args: InspectArgs) -> i32 {
    let stage = match LoadedStage::open(&args.library) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("modelstage inspect: {e}");
            return 1;
        }
    };
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
    0
}
