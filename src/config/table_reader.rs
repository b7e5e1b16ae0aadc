//! `table_reader!`: the `Deserialize` impl of a `Raw*` section whose keys are all optional,
//! written out instead of derived. serde's derive also writes a `visit_seq` (a struct given as
//! a TOML array, which no config does) and a field-name visitor, instantiated per section in
//! toml's deserializer; this reads a table only, with the same errors the derive gives
//! (`unknown field`, `duplicate field`, `invalid type: …, expected a table`).

/// `table_reader!(RawX { key_a, key_b })`: each field is an `Option<_>`, named as its TOML key.
/// `table_reader!(RawX, other keys ignored { … })`: keys not listed are skipped, as the derive
/// does without `deny_unknown_fields` (`[agent]`, whose other keys `socket_section.rs` reads).
macro_rules! table_reader {
    ($name:ident { $($field:ident),* $(,)? }) => {
        table_reader!(@reader $name, false, { $($field),* });
    };
    ($name:ident, other keys ignored { $($field:ident),* $(,)? }) => {
        table_reader!(@reader $name, true, { $($field),* });
    };
    (@reader $name:ident, $lenient:literal, { $($field:ident),* }) => {
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                const FIELDS: &[&str] = &[$(stringify!($field)),*];
                struct Table;
                impl<'de> serde::de::Visitor<'de> for Table {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a table")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        $(let mut $field = None;)*
                        while let Some(key) = map.next_key_seed($crate::config::table_reader::Key(FIELDS, $lenient))? {
                            match key {
                                $(stringify!($field) => {
                                    if $field.is_some() {
                                        return Err(serde::de::Error::duplicate_field(
                                            stringify!($field),
                                        ));
                                    }
                                    $field = Some(map.next_value()?);
                                })*
                                _ if $lenient => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                                _ => {}
                            }
                        }
                        Ok($name { $($field: $field.flatten(),)* })
                    }
                }
                d.deserialize_struct(stringify!($name), FIELDS, Table)
            }
        }
    };
}

/// A key of a table read by `table_reader!`: the entry of `fields` it names, or serde's
/// `unknown field` error — raised while the key is read, as the derive does, so that toml puts
/// the key's line on it; when `.1` (other keys ignored), an unknown key is `""` (its value is skipped).
/// One type for every such table.
pub(super) struct Key(pub(super) &'static [&'static str], pub(super) bool);

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = &'static str;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl serde::de::Visitor<'_> for Key {
    type Value = &'static str;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<&'static str, E> {
        self.0
            .iter()
            .find(|field| **field == key)
            .copied()
            .or(self.1.then_some(""))
            .ok_or_else(|| E::unknown_field(key, self.0))
    }
}
