//! The fitted model compiled for serving: per input field what to do with
//! it, category lookups, and where each column's features go.

use std::collections::HashMap;

use crate::model::FittedModel;
use crate::schema::HandleUnknown;

/// The code of a category the model does not know.
pub const UNKNOWN: u32 = u32::MAX;

/// What one input field feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRole {
    /// The n-th numeric column.
    Numeric(usize),
    /// The n-th categorical column.
    Categorical(usize),
}

#[derive(Debug, Clone)]
pub struct NumericPlan {
    pub fill: f64,
    pub mean: f64,
    pub scale: f64,
}

#[derive(Debug, Clone)]
pub struct CategoricalPlan {
    pub categories: CategoryIndex,
    /// The code a missing value gets: the fill value's, or UNKNOWN when the
    /// training data had no missing value.
    pub missing_code: u32,
    /// The column's first output feature.
    pub offset: usize,
}

/// Looks a category up by its bytes. Category lists are usually short; a
/// scan of a handful of byte strings beats hashing them.
#[derive(Debug, Clone)]
pub enum CategoryIndex {
    Scan(Vec<Vec<u8>>),
    Map(HashMap<Vec<u8>, u32>),
}

impl CategoryIndex {
    fn new(categories: &[String]) -> CategoryIndex {
        if categories.len() <= 16 {
            CategoryIndex::Scan(categories.iter().map(|c| c.as_bytes().to_vec()).collect())
        } else {
            CategoryIndex::Map(
                categories
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.as_bytes().to_vec(), i as u32))
                    .collect(),
            )
        }
    }

    /// The category's position in the sorted list, or UNKNOWN.
    #[inline]
    pub fn code(&self, value: &[u8]) -> u32 {
        match self {
            CategoryIndex::Scan(list) => list
                .iter()
                .position(|c| c.as_slice() == value)
                .map_or(UNKNOWN, |i| i as u32),
            CategoryIndex::Map(map) => map.get(value).copied().unwrap_or(UNKNOWN),
        }
    }
}

/// Everything serving needs, derived once at load.
#[derive(Debug, Clone)]
pub struct Plan {
    pub model: FittedModel,
    /// One entry per input feature field, in field order.
    pub fields: Vec<FieldRole>,
    pub numeric: Vec<NumericPlan>,
    pub categorical: Vec<CategoricalPlan>,
    /// Output features per record (label excluded).
    pub features: usize,
    pub handle_unknown: HandleUnknown,
    /// The label's name for messages ("label" when the model has none).
    pub label_name: String,
}

impl Plan {
    pub fn new(model: FittedModel) -> Plan {
        let mut fields = vec![FieldRole::Numeric(0); model.columns.len()];
        let numeric = model
            .numeric
            .iter()
            .enumerate()
            .map(|(slot, c)| {
                fields[c.index] = FieldRole::Numeric(slot);
                NumericPlan {
                    fill: c.fill,
                    mean: c.mean,
                    scale: c.scale,
                }
            })
            .collect();
        let mut offset = model.numeric.len();
        let fill = model.options.categorical_fill_value.as_str();
        let categorical = model
            .categorical
            .iter()
            .enumerate()
            .map(|(slot, c)| {
                fields[c.index] = FieldRole::Categorical(slot);
                let plan = CategoricalPlan {
                    categories: CategoryIndex::new(&c.categories),
                    missing_code: c
                        .categories
                        .iter()
                        .position(|x| x == fill)
                        .map_or(UNKNOWN, |i| i as u32),
                    offset,
                };
                offset += c.categories.len();
                plan
            })
            .collect();
        Plan {
            fields,
            numeric,
            categorical,
            features: offset,
            handle_unknown: model.options.handle_unknown,
            label_name: model.label.clone().unwrap_or_else(|| "label".to_string()),
            model,
        }
    }

    /// Feature fields of an unlabelled record.
    pub fn width(&self) -> usize {
        self.fields.len()
    }
}
