//! A minimal INI writer that can only emit what pgBackRest parses: `#`
//! comment lines, `[section]` headers and `key=value` lines.
//! (STUB: the render helper implements this.)

/// Builds an INI document line by line.
#[derive(Default)]
pub struct IniWriter {
    out: String,
}

impl IniWriter {
    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }
}
