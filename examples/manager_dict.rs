//! Two processes write one shared dict: the `Manager().dict()` example of seed 001.
//!
//! The Python original:
//!
//! ```python
//! def add_data(p_dict, key, value):
//!     p_dict[key] = value
//!
//! if __name__ == "__main__":
//!     process_dict = Manager().dict()
//!     first_process = Process(target=add_data, args=(process_dict, "Darr_en1", 22))
//!     second_process = Process(target=add_data, args=(process_dict, "Darr_en2", 44))
//!     first_process.start(); second_process.start()
//!     first_process.join(); second_process.join()
//!     print(process_dict)   # {'Darr_en1': 22, 'Darr_en2': 44}
//! ```
//!
//! As in Python, the manager's server runs in a process of its own, and the dict's proxy is
//! passed to each child in its arguments: it travels as the server's address, authkey and the
//! dict's name, and the child connects to the server when it decodes it.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features manager,process --example manager_dict
//! ```

use conveyor::manager::{self, DictProxy, Manager};
use conveyor::process::{self as process, entry, Process};

/// `p_dict[key] = value`, in a child process.
fn add_data(
    (p_dict, key, value): (DictProxy<String, i32>, String, i32),
) -> Result<(), manager::ManagerError> {
    p_dict.set(&key, &value)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(add_data)]);

    // `with Manager() as m:` - the server process stops when `m` drops.
    let m = Manager::builder().spawn()?;
    let process_dict = m.dict::<String, i32>("process_dict")?;

    let first = Process::new("add_data", (&process_dict, "Darr_en1", 22)).start()?;
    let second = Process::new("add_data", (&process_dict, "Darr_en2", 44)).start()?;
    first.join()?;
    second.join()?;

    let mut entries = process_dict.snapshot()?;
    entries.sort();
    let shown: Vec<String> = entries.iter().map(|(k, v)| format!("'{k}': {v}")).collect();
    println!("{{{}}}", shown.join(", "));
    Ok(())
}
