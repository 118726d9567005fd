//! Walking a parsed document before it runs: [`Walk`] adds up what each field weighs, following
//! fragments (each named one walked once) within a depth and a number of selections;
//! [`Counter`] counts (or weighs) chosen root fields with it. The budget
//! (`super::budget`) and the weights of the built-in fields (`super::weights`) both use it.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};
use async_graphql::{Pos, Positioned};

/// Fragments (inline or spread) may nest this deep at the root of an operation; deeper, the
/// request is refused rather than counted partly.
pub(crate) const MAX_NESTING: usize = 32;
/// Selections looked at per operation at most (each named fragment is walked once).
pub(crate) const MAX_VISITS: usize = 100_000;

/// Why a document could not be counted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Uncountable {
    TooDeep,
    TooLarge,
}

/// What one matching root field weighs (1 for a plain count).
type Weigh<'w, 'd> = dyn FnMut(&'d Positioned<Field>) -> Result<usize, Uncountable> + 'w;

/// What a walk makes of one field: its weight (the walk, the field, its depth).
pub(crate) type OnField<'f, 'd> =
    dyn FnMut(&mut Walk<'d>, &'d Positioned<Field>, usize) -> Result<usize, Uncountable> + 'f;

/// A walk over selections that follows fragments and adds up what each field weighs: each
/// named fragment is walked once and its sum reused wherever it is spread (a cycle counts as
/// nothing: validation refuses cycles after this); at most `max_depth` levels and
/// [`MAX_VISITS`] selections, or the walk gives up ([`Uncountable`]). One walk serves one way
/// of weighing fields (the fragment sums it keeps are of that way).
pub(crate) struct Walk<'d> {
    doc: &'d ExecutableDocument,
    max_depth: usize,
    fragments: HashMap<&'d str, usize>,
    in_progress: Vec<&'d str>,
    visits: usize,
}

impl<'d> Walk<'d> {
    pub(crate) fn new(doc: &'d ExecutableDocument, max_depth: usize) -> Self {
        Self {
            doc,
            max_depth,
            fragments: HashMap::new(),
            in_progress: Vec::new(),
            visits: 0,
        }
    }

    /// The sum of what `field` says of each field in `set`, fragments followed.
    pub(crate) fn sum(
        &mut self,
        set: &'d SelectionSet,
        depth: usize,
        field: &mut OnField<'_, 'd>,
    ) -> Result<usize, Uncountable> {
        if depth > self.max_depth {
            return Err(Uncountable::TooDeep);
        }
        let mut total = 0usize;
        for selection in &set.items {
            self.visits += 1;
            if self.visits > MAX_VISITS {
                return Err(Uncountable::TooLarge);
            }
            total = total.saturating_add(match &selection.node {
                Selection::Field(f) => field(self, f, depth)?,
                Selection::InlineFragment(fragment) => {
                    self.sum(&fragment.node.selection_set.node, depth + 1, field)?
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match (self.fragments.get(name), self.doc.fragments.get(name)) {
                        (Some(known), _) => *known,
                        (None, _) if self.in_progress.contains(&name) => 0,
                        (None, Some(fragment)) => {
                            self.in_progress.push(name);
                            let n =
                                self.sum(&fragment.node.selection_set.node, depth + 1, field)?;
                            self.in_progress.pop();
                            self.fragments.insert(name, n);
                            n
                        }
                        (None, None) => 0,
                    }
                }
            });
        }
        Ok(total)
    }
}

/// Counts the root fields named in `names` (fragments followed, at most [`MAX_NESTING`] deep);
/// each field found counts what `weigh` says (1 by default).
pub(crate) struct Counter<'d, 'w> {
    walk: Walk<'d>,
    names: &'d [&'d str],
    weigh: Option<&'w mut Weigh<'w, 'd>>,
    pub(crate) first: Option<Pos>,
}

impl<'d, 'w> Counter<'d, 'w> {
    pub(crate) fn new(doc: &'d ExecutableDocument, names: &'d [&'d str]) -> Self {
        Self {
            walk: Walk::new(doc, MAX_NESTING),
            names,
            weigh: None,
            first: None,
        }
    }

    /// A counter whose fields weigh what `weigh` says.
    pub(crate) fn weighed(
        doc: &'d ExecutableDocument,
        names: &'d [&'d str],
        weigh: &'w mut Weigh<'w, 'd>,
    ) -> Self {
        Self {
            weigh: Some(weigh),
            ..Self::new(doc, names)
        }
    }

    /// Selections looked at so far.
    #[cfg(test)]
    pub(crate) fn visits(&self) -> usize {
        self.walk.visits
    }

    pub(crate) fn count(
        &mut self,
        set: &'d SelectionSet,
        depth: usize,
    ) -> Result<usize, Uncountable> {
        let Self {
            walk,
            names,
            weigh,
            first,
        } = self;
        walk.sum(set, depth, &mut |_, field, _| {
            if !names.contains(&field.node.name.node.as_str()) {
                return Ok(0);
            }
            first.get_or_insert(field.pos);
            match weigh.as_mut() {
                Some(weigh) => weigh(field),
                None => Ok(1),
            }
        })
    }
}
