#![no_main]
//! `server_connection`: see `snowsocket_fuzz::oracle::server_connection`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| snowsocket_fuzz::oracle::server_connection(data));
