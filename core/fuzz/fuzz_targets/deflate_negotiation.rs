#![no_main]
//! `deflate_negotiation`: see `snowsocket_fuzz::oracle::deflate`'s `deflate_negotiation`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    snowsocket_fuzz::oracle::run("deflate_negotiation", data);
});
