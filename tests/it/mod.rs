mod broken;
mod cli;
mod common;
mod differential;
mod synthetic;
