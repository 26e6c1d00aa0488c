//! End-to-end tests: the `edgetrace` binary run on `samples/`, on captures
//! written by the tests themselves, and — when `../shared` is present — on
//! every lab and third-party capture, compared with tshark-derived
//! expectations committed under `tests/expected/`.

mod it;
