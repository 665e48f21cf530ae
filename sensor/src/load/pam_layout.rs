//! libpam's private handle layout, found by experiment: a handle is created in this process
//! with items of known value, and the offsets of the members that point to them are looked up.
//! What libpam returns from `pam_get_item()` is the very pointer it keeps in the handle.

use std::{
    ffi::{c_char, c_int, c_void, CStr},
    path::Path,
};

use sensor_common::{
    PamLayout, PAM_ITEM_RHOST, PAM_ITEM_RUSER, PAM_ITEM_SERVICE, PAM_ITEM_TTY, PAM_ITEM_USER,
};

#[repr(C)]
struct PamConv {
    conv: extern "C" fn(c_int, *const c_void, *mut c_void, *mut c_void) -> c_int,
    appdata: *mut c_void,
}

/// Refuses every question: the handle is only created and freed, never used.
extern "C" fn no_conversation(_: c_int, _: *const c_void, _: *mut c_void, _: *mut c_void) -> c_int {
    19 // PAM_CONV_ERR
}

type PamStart =
    unsafe extern "C" fn(*const c_char, *const c_char, *const PamConv, *mut *mut c_void) -> c_int;
type PamSetItem = unsafe extern "C" fn(*mut c_void, c_int, *const c_void) -> c_int;
type PamGetItem = unsafe extern "C" fn(*const c_void, c_int, *mut *const c_void) -> c_int;

/// The PAM item numbers (`security/_pam_types.h`) in PAM_ITEM_* order, and the value set.
const ITEMS: [(usize, c_int, &CStr); 5] = [
    (PAM_ITEM_SERVICE, 1, c"sensor-layout-service"),
    (PAM_ITEM_USER, 2, c"sensor-layout-user"),
    (PAM_ITEM_RHOST, 4, c"sensor-layout-rhost"),
    (PAM_ITEM_RUSER, 8, c"sensor-layout-ruser"),
    (PAM_ITEM_TTY, 3, c"sensor-layout-tty"),
];

/// How far into the handle to look: the items come early in every libpam since 0.99.
const SCAN_BYTES: usize = 512;

pub fn calibrate(libpam: &Path) -> Result<PamLayout, String> {
    // SAFETY: libpam's documented API, called as its header declares it; the handle is never
    // freed and is read only within SCAN_BYTES, inside its allocation (pam_handle is larger).
    unsafe {
        // Kept loaded for the process's life, as the handle that is never freed points into it.
        let lib: &'static libloading::Library = Box::leak(Box::new(
            libloading::Library::new(libpam).map_err(|e| e.to_string())?,
        ));
        let err = |e: libloading::Error| e.to_string();
        let start = *lib.get::<PamStart>(b"pam_start").map_err(err)?;
        let set_item = *lib.get::<PamSetItem>(b"pam_set_item").map_err(err)?;
        let get_item = *lib.get::<PamGetItem>(b"pam_get_item").map_err(err)?;
        let conv = PamConv {
            conv: no_conversation,
            appdata: std::ptr::null_mut(),
        };
        let mut pamh: *mut c_void = std::ptr::null_mut();
        let (service, user) = (ITEMS[0].2, ITEMS[1].2);
        if start(service.as_ptr(), user.as_ptr(), &conv, &mut pamh) != 0 || pamh.is_null() {
            return Err("pam_start failed".into());
        }
        let mut layout = PamLayout::default();
        let result = (|| {
            for (_, item, value) in &ITEMS[2..] {
                if set_item(pamh, *item, value.as_ptr().cast()) != 0 {
                    return Err(format!("pam_set_item({item}) failed"));
                }
            }
            let words = pamh as *const usize;
            for (slot, item, value) in ITEMS {
                let mut ptr: *const c_void = std::ptr::null();
                if get_item(pamh, item, &mut ptr) != 0 || ptr.is_null() {
                    return Err(format!("pam_get_item({item}) failed"));
                }
                if CStr::from_ptr(ptr.cast()) != value {
                    return Err(format!("pam_get_item({item}) gave another value"));
                }
                let hits: Vec<usize> = (0..SCAN_BYTES / 8)
                    .filter(|&i| words.add(i).read() == ptr as usize)
                    .collect();
                let [i] = hits[..] else {
                    return Err(format!("item {item} found {} times", hits.len()));
                };
                layout.item[slot] = (i * 8) as u32;
            }
            Ok(())
        })();
        // No pam_end(): with no stack run on the handle, libpam would take it for sshd faking an
        // unknown user and write USER_ERR (`op=PAM:bad_ident`, `exe=` the sensor) into the host's
        // audit trail at every start. The handle (and the "other" stack's modules pam_start
        // loaded) is left allocated instead, once per start, a few kilobytes.
        result?;
        layout.known = 1;
        Ok(layout)
    }
}
