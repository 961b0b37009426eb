//! `modelstage new NAME`: a stage project in a new folder, ready to build, test, serve and
//! package with no edits.
//!
//! The project is a cargo package of its own (its own `[workspace]` table, so a parent folder's
//! workspace does not claim it) with a working stage that trains a mean and serves it, a test that
//! runs it through modelstage's loader (`modelstage-testing`), a `Dockerfile` that puts it on the
//! runtime base image, and a README with the next commands. `--lang c` writes the same stage in C
//! against a copy of `modelstage.h`, compiled by `build.rs`. The templates are in `templates/`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::image::{runtime_tag, stage_dockerfile, StageLabels, VERSION};

/// The language of the stage.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    Rust,
    C,
}

/// `modelstage new`.
#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// The project's folder, created here; its last part names the package and the stage
    /// (letters, digits, `-` and `_`, starting with a letter).
    pub name: PathBuf,
    /// The language of the stage.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// A checkout of modelstage to take the SDK and the test harness from (path dependencies);
    /// without it the project depends on their registry versions.
    #[arg(long, value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
}

const ABI_HEADER: &str = include_str!("../../../abi/include/modelstage.h");
const README: &str = include_str!("templates/README.md");
const STAGE_TEST: &str = include_str!("templates/stage_test.rs");
const RUST_CARGO: &str = include_str!("templates/rust/Cargo.toml");
const RUST_LIB: &str = include_str!("templates/rust/lib.rs");
const C_CARGO: &str = include_str!("templates/c/Cargo.toml");
const C_BUILD: &str = include_str!("templates/c/build.rs");
const C_LIB: &str = include_str!("templates/c/lib.rs");
const C_STAGE: &str = include_str!("templates/c/stage.c");

/// Rust keywords and the names cargo reserves, which cannot name a library crate.
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "try",
    "gen",
    "test",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "build",
    "deps",
    "examples",
    "incremental",
];

/// Runs `modelstage new`.
pub fn run(args: NewArgs) -> Result<(), crate::CommandError> {
    let message = create(&args).map_err(|e| crate::CommandError::failed("new", e))?;
    println!("{message}");
    Ok(())
}

/// Checks that `name` can name a cargo package and its library; the error says what is allowed.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if name.is_empty() || name.len() > 64 || !valid_chars || !starts_with_letter {
        bail!(
            "{name:?} cannot name a stage: use 1 to 64 ASCII letters, digits, '-' and '_', starting \
             with a letter (e.g. my-stage)"
        );
    }
    if RESERVED.contains(&name.replace('-', "_").as_str()) {
        bail!("{name:?} is reserved by Rust or cargo and cannot name a stage: choose another name");
    }
    Ok(())
}

/// Writes the project; returns what to do next.
pub fn create(args: &NewArgs) -> anyhow::Result<String> {
    let dir = &args.name;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    check_name(&name)?;
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(dir)
                .with_context(|| format!("cannot list {}", dir.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "{} already exists and is not an empty folder: choose a new name, or remove it first",
                dir.display()
            );
        }
    }
    let sdk = args.sdk_path.as_deref().map(checkout).transpose()?;
    let files = project_files(&name, args.lang, sdk.as_deref());
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(format!(
        "created the {} stage {name} in {}\n\nnext:\n  cd {}\n  cargo test\n  cargo build --release\n  \
         modelstage image --stage target/release/lib{}.so --tag {name}:latest\n\n(its README.md has the rest)",
        match args.lang {
            Lang::Rust => "Rust",
            Lang::C => "C",
        },
        dir.display(),
        dir.display(),
        name.replace('-', "_")
    ))
}

/// The absolute path of a modelstage checkout; the error says what it must hold.
fn checkout(path: &Path) -> anyhow::Result<PathBuf> {
    let dir = std::fs::canonicalize(path)
        .with_context(|| format!("--sdk-path {}: no such folder", path.display()))?;
    for crate_dir in ["framework/sdk", "framework/testing"] {
        if !dir.join(crate_dir).join("Cargo.toml").is_file() {
            bail!(
                "--sdk-path {} is not a checkout of modelstage: it has no {crate_dir}/Cargo.toml",
                path.display()
            );
        }
    }
    Ok(dir)
}

/// A dependency line: a path into the checkout, or the registry version of this modelstage.
fn dependency(krate: &str, sdk: Option<&Path>, folder: &str) -> String {
    match sdk {
        Some(dir) => format!(
            "{krate} = {{ path = {} }}",
            toml_string(&dir.join(folder).to_string_lossy())
        ),
        None => {
            let mut parts = VERSION.split('.');
            let major_minor = format!("{}.{}", parts.next().unwrap_or("0"), parts.next().unwrap_or("1"));
            format!("{krate} = \"{major_minor}\"")
        }
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Every file of the project, by path inside it.
pub fn project_files(name: &str, lang: Lang, sdk: Option<&Path>) -> Vec<(PathBuf, String)> {
    let lib = name.replace('-', "_");
    let library = format!("lib{lib}.so");
    let labels = StageLabels {
        name: name.to_string(),
        version: "0.1.0".to_string(),
        library: library.clone(),
        abi: format!(
            "{}.{}",
            modelstage_abi::MODELSTAGE_ABI_MAJOR,
            modelstage_abi::MODELSTAGE_ABI_MINOR
        ),
    };
    let release_library = format!("target/release/{library}");
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{lib}}", &lib)
            .replace("{{version}}", VERSION)
            .replace("{{sdk}}", &dependency("modelstage-sdk", sdk, "framework/sdk"))
            .replace(
                "{{testing}}",
                &dependency("modelstage-testing", sdk, "framework/testing"),
            )
            .replace(
                "{{lang_note}}",
                match lang {
                    Lang::Rust => "",
                    Lang::C => " written in C (`src/stage.c`)",
                },
            )
    };
    let dockerfile = format!(
        "# Build the stage first (`cargo build --release`), then `docker build --pull=false -t {name} .`\n\
         # The labels below were written by `modelstage new`; `modelstage image` reads them from the\n\
         # built library instead, so keep them in step with Cargo.toml when you change its version.\n{}",
        stage_dockerfile(&runtime_tag(), &release_library, &labels)
    );
    let mut files = vec![
        (PathBuf::from("README.md"), fill(README)),
        (PathBuf::from("tests/stage.rs"), fill(STAGE_TEST)),
        (PathBuf::from("Dockerfile"), dockerfile),
        // The build context is the project folder; only the library goes to the engine.
        (PathBuf::from(".dockerignore"), format!("*\n!{release_library}\n")),
        (PathBuf::from(".gitignore"), "/target\n/out\n/data\n".to_string()),
    ];
    match lang {
        Lang::Rust => {
            files.push((PathBuf::from("Cargo.toml"), fill(RUST_CARGO)));
            files.push((PathBuf::from("src/lib.rs"), fill(RUST_LIB)));
        }
        Lang::C => {
            files.push((PathBuf::from("Cargo.toml"), fill(C_CARGO)));
            files.push((PathBuf::from("build.rs"), fill(C_BUILD)));
            files.push((PathBuf::from("src/lib.rs"), fill(C_LIB)));
            files.push((PathBuf::from("src/stage.c"), fill(C_STAGE)));
            files.push((PathBuf::from("include/modelstage.h"), ABI_HEADER.to_string()));
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `project_files` fills in (a Rust template's own `{{` is an escaped brace).
    const PLACEHOLDERS: &[&str] = &[
        "{{name}}",
        "{{lib}}",
        "{{version}}",
        "{{sdk}}",
        "{{testing}}",
        "{{lang_note}}",
    ];

    #[test]
    fn names_that_cannot_name_a_crate_are_refused_with_the_rule() {
        for bad in ["", "1stage", "my stage", "my.stage", "ünï", "-x", "fn", "test"] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.contains("cannot name a stage"), "{bad}: {err}");
        }
        for good in ["my-stage", "mean_model", "A1"] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn an_existing_folder_with_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("taken");
        std::fs::create_dir(&project).unwrap();
        std::fs::write(project.join("keep.txt"), "mine").unwrap();
        let err = create(&NewArgs {
            name: project.clone(),
            lang: Lang::Rust,
            sdk_path: None,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("already exists and is not an empty folder"), "{err}");
        assert_eq!(std::fs::read_to_string(project.join("keep.txt")).unwrap(), "mine");
    }

    #[test]
    fn a_project_depends_on_the_registry_or_on_the_checkout() {
        let files = project_files("my-stage", Lang::Rust, None);
        let cargo = &files
            .iter()
            .find(|(p, _)| p == Path::new("Cargo.toml"))
            .unwrap()
            .1;
        assert!(cargo.contains("name = \"my-stage\""), "{cargo}");
        assert!(cargo.contains("modelstage-sdk = \"0.1\""), "{cargo}");
        assert!(cargo.contains("modelstage-testing = \"0.1\""), "{cargo}");
        assert!(cargo.contains("\n[workspace]\n"), "{cargo}");
        for placeholder in PLACEHOLDERS {
            let left = files.iter().find(|(_, text)| text.contains(placeholder));
            assert!(left.is_none(), "{placeholder} was left in {left:?}");
        }

        let files = project_files("my-stage", Lang::C, Some(Path::new("/src/modelstage")));
        let cargo = &files
            .iter()
            .find(|(p, _)| p == Path::new("Cargo.toml"))
            .unwrap()
            .1;
        assert!(
            cargo.contains("modelstage-testing = { path = \"/src/modelstage/framework/testing\" }"),
            "{cargo}"
        );
        let docker = &files
            .iter()
            .find(|(p, _)| p == Path::new("Dockerfile"))
            .unwrap()
            .1;
        assert!(
            docker.contains("COPY target/release/libmy_stage.so /opt/modelstage/stage.so"),
            "{docker}"
        );
        assert!(files.iter().any(|(p, _)| p == Path::new("include/modelstage.h")));
    }

    #[test]
    fn a_folder_that_is_not_a_checkout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = checkout(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not a checkout of modelstage"), "{err}");
    }
}
