mod broken;
mod cli;
mod common;
mod differential;
mod fuzz_replay;
mod reassembly;
mod stun;
mod synthetic;
