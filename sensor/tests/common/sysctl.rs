//! Sysctls set for a test and restored, to the values found, on drop.

pub struct Sysctls {
    saved: Vec<(String, String)>,
}

fn path(name: &str) -> String {
    format!("/proc/sys/{}", name.replace('.', "/"))
}

impl Sysctls {
    pub fn set(values: &[(&str, &str)]) -> Sysctls {
        let mut saved = Vec::new();
        for (name, value) in values {
            let old = std::fs::read_to_string(path(name)).unwrap();
            saved.push((name.to_string(), old.trim().to_string()));
            std::fs::write(path(name), value).unwrap();
        }
        Sysctls { saved }
    }
}

impl Drop for Sysctls {
    fn drop(&mut self) {
        for (name, value) in self.saved.iter().rev() {
            let _ = std::fs::write(path(name), value);
        }
    }
}
