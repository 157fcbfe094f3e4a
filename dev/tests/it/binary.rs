//! The other side of the root's `workspace::the_production_binary_holds_no_simulator_code`: the
//! markers it looks for are in the binary that does link the simulator, so the check there
//! would fail if the simulator reached the production binary.

#[test]
fn the_dev_binary_holds_the_simulator_markers_the_production_check_looks_for() {
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_kaitong-dev")).unwrap();
    for marker in kaitong_dev::simulator::MARKERS {
        assert!(
            bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "kaitong-dev lacks {marker:?}: the production binary's check would see nothing"
        );
    }
}
