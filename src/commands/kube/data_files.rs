//! The files a config names for its modules to read as they start
//! (`[modules.catalog] products_file`, `[modules.currency] rates_file`),
//! shipped to the pods.
//!
//! A pod has nothing of the machine the manifests were made on: a path
//! there named a file the pod could not read, and the node exited with a
//! config error, again and again. So `deploy kube` reads each file here,
//! puts it in the ConfigMap beside the config (under the key
//! `MODULE.SETTING`), mounts it in the pods of the nodes that run the
//! module, and points the setting at it there with an environment
//! variable. A file that cannot be read here is refused, as is more than
//! a ConfigMap holds.

use runtime::Catalogue;
use runtime::config::Plan;

/// Where the files are mounted in a pod.
const FILES_DIR: &str = "/etc/boutique/files";

/// The most a ConfigMap's data may hold here, the config included:
/// Kubernetes refuses an object over 1 MiB, keys, metadata and encoding
/// included, so 64 KiB are left for those.
const CONFIG_MAP_LIMIT: usize = (1 << 20) - (64 << 10);

/// Above this, `kubectl apply` (client-side) cannot apply the ConfigMap:
/// it keeps a copy of the object, as JSON, in an annotation, and the
/// annotations of an object hold 256 KiB at most; 16 KiB are left for
/// the rest of the copy.
const CLIENT_SIDE_APPLY_LIMIT: usize = (256 << 10) - (16 << 10);

/// The length of `text` as a JSON string.
fn json_len(text: &str) -> usize {
    serde_json::to_string(text).map_or(text.len(), |json| json.len())
}

/// One file a module reads, as read here.
pub(super) struct DataFile {
    /// The module that reads it.
    pub module: &'static str,
    /// The setting that names it.
    pub setting: &'static str,
    /// What it holds.
    pub text: String,
}

impl DataFile {
    /// Its key in the ConfigMap.
    pub fn key(&self) -> String {
        format!("{}.{}", self.module, self.setting)
    }

    /// Where a pod finds it.
    pub fn path_in_pod(&self) -> String {
        format!("{FILES_DIR}/{}", self.key())
    }

    /// The config key of its setting, which the pods get as `path_in_pod`.
    pub fn config_key(&self) -> String {
        format!("modules.{}.{}", self.module, self.setting)
    }
}

/// Reads every file the plan's modules read as they start (each module
/// once, however many nodes run it), from paths as `run` here would
/// (relative ones from the current directory). `config_text`: the
/// config's own, which shares the ConfigMap.
pub(super) fn read(
    plan: &Plan,
    catalogue: &Catalogue,
    config_text: &str,
) -> anyhow::Result<Vec<DataFile>> {
    let modules = super::placed_modules(plan);
    let mut files = Vec::new();
    let mut size = config_text.len();
    for module in modules {
        for (setting, path) in plan.data_files(catalogue, module) {
            let text = std::fs::read_to_string(&path).map_err(|error| {
                super::refused(&format!(
                    "[modules.{module}] {setting} = {:?}: deploy kube puts the file into the \
                     ConfigMap for the pods (which have nothing of this machine), and cannot \
                     read it here: {error}",
                    path.display().to_string()
                ))
            })?;
            size = size.saturating_add(text.len());
            files.push(DataFile {
                module,
                setting,
                text,
            });
        }
    }
    if size > CONFIG_MAP_LIMIT {
        return Err(super::refused(&format!(
            "the config and the files it names come to {size} bytes, more than a ConfigMap \
             holds ({CONFIG_MAP_LIMIT}); use smaller files"
        )));
    }
    // As JSON (a line break is two bytes there, a quote two).
    let as_json: usize = files
        .iter()
        .map(|file| json_len(&file.text))
        .sum::<usize>()
        .saturating_add(json_len(config_text));
    if as_json > CLIENT_SIDE_APPLY_LIMIT {
        to_stderr!(
            "boutique: warning: the config and the files it names come to {as_json} bytes as \
             JSON, more than `kubectl apply` keeps in its annotation (256 KiB): apply the \
             manifests with `kubectl apply --server-side -f -`"
        );
    }
    Ok(files)
}
