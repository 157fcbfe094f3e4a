//! The engine itself (`Engine`): everything a turn reads, in one borrowed value the steps'
//! files extend with their own methods.

use crate::catalog::Catalog;
use crate::dialog::understand::Matcher;
use crate::requests::BatchSchedule;

/// Everything a turn reads; cheap to build per message.
pub struct Engine<'a> {
    pub catalog: &'a Catalog,
    pub matcher: &'a Matcher,
    pub schedule: &'a BatchSchedule,
    /// Secrets and disclaimers are never asked for in a group chat.
    pub in_group: bool,
    /// The message in an embedding space, when its words alone were not clear.
    pub meaning: Option<(&'a crate::dialog::meaning::Space, &'a [f32])>,
}
