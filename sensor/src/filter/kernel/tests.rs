use super::*;

#[test]
fn devices_take_the_kernels_encoding() {
    assert_eq!(kernel_dev(libc::makedev(8, 1)), (8 << 20) | 1);
    assert_eq!(kernel_dev(libc::makedev(259, 300)), (259 << 20) | 300);
}

#[test]
fn the_loader_may_be_an_interpreter_a_program_or_a_script_not() {
    let loader = crate::normalise::lookup::elf_interp(Path::new("/bin/true")).unwrap();
    let loader = std::fs::canonicalize(Path::new(OsStr::from_bytes(&loader))).unwrap();
    assert!(may_be_interpreter(&loader), "{}", loader.display());
    assert!(!may_be_interpreter(Path::new("/usr/bin/true")));
    assert!(!may_be_interpreter(Path::new("/usr/bin/ldd")));
    assert!(!may_be_interpreter(Path::new("/nonexistent")));
}

#[test]
fn a_path_keeps_its_former_object_for_a_while() {
    let dir = std::env::temp_dir().join(format!("sensor-kf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prog");
    std::fs::write(&file, b"one").unwrap();
    let path = file.as_os_str().as_bytes().to_vec();
    let mut seen = Seen::default();
    let t0 = Instant::now();
    look_up(&path, &mut seen, t0);
    let first = seen.ids[0].0;
    let name = seen.name.unwrap();
    assert_eq!(name.len, 4);
    assert_eq!(&name.name[..4], b"prog");
    assert_eq!(name.dir_ino, std::fs::metadata(&dir).unwrap().ino());
    // Replaced, as a package upgrade does: the new object joins, the old stays for FORMER.
    let new = dir.join("prog.new");
    std::fs::write(&new, b"two").unwrap();
    std::fs::rename(&new, &file).unwrap();
    look_up(&path, &mut seen, t0 + Duration::from_secs(1));
    assert_eq!(seen.ids.len(), 2);
    assert_ne!(seen.ids[1].0, first);
    look_up(&path, &mut seen, t0 + FORMER + Duration::from_secs(1));
    assert_eq!(seen.ids.len(), 1);
    assert_ne!(seen.ids[0].0, first);
    std::fs::remove_dir_all(&dir).unwrap();
}
