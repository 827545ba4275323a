//! The loom side of `primitive` (parking emulation, deterministic clock, thread ids).
//! Written together with the first loom models; until then `--cfg loom` builds stop here.
compile_error!("the loom side of gosync's primitive layer is not written yet");
