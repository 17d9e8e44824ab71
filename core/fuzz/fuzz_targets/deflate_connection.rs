#![no_main]
//! `deflate_connection`: see `snowsocket_fuzz::oracle::deflate`'s `deflate_connection`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    snowsocket_fuzz::oracle::run("deflate_connection", data);
});
