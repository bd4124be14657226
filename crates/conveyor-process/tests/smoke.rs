use conveyor_process::{init_test, ExitStatus, Process};

fn code(c: i32) -> i32 {
    c
}

fn explodes(_: ()) {
    panic!("boom");
}

#[test]
fn statuses() {
    init_test!(code, explodes);
    let a = Process::new("code", 3).start().unwrap();
    assert_eq!(a.join().unwrap(), ExitStatus::Exited(3));
    let b = Process::new("explodes", ()).start().unwrap();
    assert_eq!(b.join().unwrap(), ExitStatus::Panicked("boom".into()));
}
