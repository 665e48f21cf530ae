use super::*;

#[test]
fn devices_take_the_kernels_encoding() {
    assert_eq!(kernel_dev(libc::makedev(8, 1)), (8 << 20) | 1);
    assert_eq!(kernel_dev(libc::makedev(259, 300)), (259 << 20) | 300);
}

#[test]
fn mount_points_are_unescaped() {
    assert_eq!(unescape(br"/mnt/a\040b\011c"), b"/mnt/a b\tc");
    assert_eq!(unescape(br"/x\0"), br"/x\0");
    assert!(mount_points().contains(&b"/".to_vec()));
}

#[test]
fn a_tree_is_its_directory_and_the_roots_of_the_mounts_under_it() {
    let mounts = mount_points();
    let mut seen = Seen::default();
    look_up(b"/dev", true, &mounts, &mut seen, Instant::now());
    let dev = std::fs::metadata("/dev").unwrap();
    assert_eq!(seen.ids[0].0.ino, dev.ino());
    assert_eq!(seen.ids[0].0.dev, kernel_dev(dev.dev()));
    // /dev/pts, /dev/shm… where mounted here: each mount's root.
    for m in mounts.iter().filter(|m| m.starts_with(b"/dev/")) {
        let root = std::fs::metadata(Path::new(OsStr::from_bytes(m))).unwrap();
        let id = WatchInode {
            ino: root.ino(),
            dev: kernel_dev(root.dev()),
            _pad: 0,
        };
        assert!(seen.ids.iter().any(|(i, _)| *i == id), "{m:?}");
    }
    assert!(seen.name.is_none());
    // Not a directory: no tree.
    let mut file = Seen::default();
    look_up(b"/etc/passwd", true, &mounts, &mut file, Instant::now());
    assert!(file.ids.is_empty());
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
    look_up(&path, false, &[], &mut seen, t0);
    let first = seen.ids[0].0;
    let name = seen.name.unwrap();
    assert_eq!(name.len, 4);
    assert_eq!(&name.name[..4], b"prog");
    assert_eq!(name.dir_ino, std::fs::metadata(&dir).unwrap().ino());
    // Replaced, as a package upgrade does: the new object joins, the old stays for FORMER.
    let new = dir.join("prog.new");
    std::fs::write(&new, b"two").unwrap();
    std::fs::rename(&new, &file).unwrap();
    look_up(&path, false, &[], &mut seen, t0 + Duration::from_secs(1));
    assert_eq!(seen.ids.len(), 2);
    assert_ne!(seen.ids[1].0, first);
    look_up(
        &path,
        false,
        &[],
        &mut seen,
        t0 + FORMER + Duration::from_secs(1),
    );
    assert_eq!(seen.ids.len(), 1);
    assert_ne!(seen.ids[0].0, first);
    std::fs::remove_dir_all(&dir).unwrap();
}
