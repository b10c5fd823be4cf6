//! Admission steps that look beyond the object being written, run by the generic store right
//! before it writes (after the resource's own strategy admitted the object). Only resource
//! quota so far ([`resourcequota`]).

pub mod resourcequota;
