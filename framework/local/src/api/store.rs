//! The resources of `modelstage api`, kept in an embedded SQLite database in the state folder so
//! that they survive a restart. A resource is its kind, its name and its description: the JSON
//! object its Describe operation answers, kept current as its status changes.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::wire::ApiError;

/// The kinds of resource, as ARNs name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    TrainingJob,
    Model,
    EndpointConfig,
    Endpoint,
    TransformJob,
}

impl Kind {
    /// The resource type in an ARN (`arn:aws:sagemaker:<region>:<account>:<type>/<name>`).
    pub fn arn_type(self) -> &'static str {
        match self {
            Kind::TrainingJob => "training-job",
            Kind::Model => "model",
            Kind::EndpointConfig => "endpoint-config",
            Kind::Endpoint => "endpoint",
            Kind::TransformJob => "transform-job",
        }
    }

    /// The prefix of the kind's members: `TrainingJob` gives `TrainingJobName`,
    /// `TrainingJobArn`, `TrainingJobStatus`.
    pub fn member(self) -> &'static str {
        match self {
            Kind::TrainingJob => "TrainingJob",
            Kind::Model => "Model",
            Kind::EndpointConfig => "EndpointConfig",
            Kind::Endpoint => "Endpoint",
            Kind::TransformJob => "TransformJob",
        }
    }

    /// The kind in messages, as the service writes it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::TrainingJob => "training job",
            Kind::Model => "model",
            Kind::EndpointConfig => "endpoint configuration",
            Kind::Endpoint => "endpoint",
            Kind::TransformJob => "transform job",
        }
    }
}

/// The database.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (or creates) `api.sqlite3` in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Store> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state folder {}", dir.display()))?;
        let path = dir.join("api.sqlite3");
        let conn = Connection::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS resources (
                 kind TEXT NOT NULL,
                 name TEXT NOT NULL,
                 created REAL NOT NULL,
                 description TEXT NOT NULL,
                 PRIMARY KEY (kind, name)
             );",
        )
        .with_context(|| format!("cannot set up {}", path.display()))?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written row: SQLite statements are
        // atomic. The connection stays usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a resource; `false` when one of that kind and name exists already.
    pub fn insert(
        &self,
        kind: Kind,
        name: &str,
        created: f64,
        description: &Value,
    ) -> Result<bool, ApiError> {
        let changed = self
            .lock()
            .execute(
                "INSERT OR IGNORE INTO resources (kind, name, created, description) VALUES (?1, ?2, ?3, ?4)",
                params![kind.arn_type(), name, created, description.to_string()],
            )
            .map_err(db_error)?;
        Ok(changed == 1)
    }

    /// The description of a resource.
    pub fn get(&self, kind: Kind, name: &str) -> Result<Option<Value>, ApiError> {
        read(&self.lock(), kind, name)
    }

    /// Changes a resource's description in place; `None` when it no longer exists.
    pub fn update(
        &self,
        kind: Kind,
        name: &str,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Option<Value>, ApiError> {
        let conn = self.lock();
        let Some(mut description) = read(&conn, kind, name)? else {
            return Ok(None);
        };
        if let Value::Object(map) = &mut description {
            change(map);
        }
        conn.execute(
            "UPDATE resources SET description = ?3 WHERE kind = ?1 AND name = ?2",
            params![kind.arn_type(), name, description.to_string()],
        )
        .map_err(db_error)?;
        Ok(Some(description))
    }

    /// Removes a resource; `false` when it did not exist.
    pub fn delete(&self, kind: Kind, name: &str) -> Result<bool, ApiError> {
        let changed = self
            .lock()
            .execute(
                "DELETE FROM resources WHERE kind = ?1 AND name = ?2",
                params![kind.arn_type(), name],
            )
            .map_err(db_error)?;
        Ok(changed == 1)
    }

    /// Every resource of a kind, newest first.
    pub fn list(&self, kind: Kind) -> Result<Vec<Value>, ApiError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare("SELECT description FROM resources WHERE kind = ?1 ORDER BY created DESC, name")
            .map_err(db_error)?;
        let rows = statement
            .query_map(params![kind.arn_type()], |row| row.get::<_, String>(0))
            .map_err(db_error)?;
        rows.map(|row| parse(&row.map_err(db_error)?)).collect()
    }
}

fn read(conn: &Connection, kind: Kind, name: &str) -> Result<Option<Value>, ApiError> {
    let text: Option<String> = conn
        .query_row(
            "SELECT description FROM resources WHERE kind = ?1 AND name = ?2",
            params![kind.arn_type(), name],
            |row| row.get(0),
        )
        .optional()
        .map_err(db_error)?;
    text.map(|t| parse(&t)).transpose()
}

fn parse(text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::internal(format!("a stored description is not JSON: {e}")))
}

fn db_error(e: rusqlite::Error) -> ApiError {
    ApiError::internal(format!("the state database failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store
            .insert(Kind::Model, "m", 1.0, &json!({"ModelName": "m"}))
            .unwrap());
        assert!(
            !store.insert(Kind::Model, "m", 2.0, &json!({})).unwrap(),
            "a duplicate is refused"
        );
        assert!(store
            .insert(Kind::Endpoint, "m", 3.0, &json!({"EndpointStatus": "Creating"}))
            .unwrap());
        store
            .update(Kind::Endpoint, "m", |d| {
                d.insert("EndpointStatus".into(), json!("InService"));
            })
            .unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Kind::Model, "m").unwrap(),
            Some(json!({"ModelName": "m"}))
        );
        assert_eq!(
            store.get(Kind::Endpoint, "m").unwrap().unwrap()["EndpointStatus"],
            "InService"
        );
        assert!(store.delete(Kind::Model, "m").unwrap());
        assert!(!store.delete(Kind::Model, "m").unwrap());
        assert_eq!(store.list(Kind::Model).unwrap().len(), 0);
        assert!(store.update(Kind::Model, "m", |_| {}).unwrap().is_none());
    }
}
