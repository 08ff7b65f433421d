//! A VFS that writes a SQLite commit's WAL frames in one system call.
//!
//! SQLite writes each WAL frame as two `pwrite`s, its 24-byte header and its
//! page, so an accepted start's commit (eight pages) makes sixteen system
//! calls, each with the kernel's fixed cost. This VFS is SQLite's own `unix`
//! VFS with one change: the WAL file collects appended frames in memory and
//! writes them at once when the commit frame's page arrives, before SQLite
//! publishes the commit in the WAL index. So every byte of a commit is in the
//! file (the same page cache, with the same durability) before any reader,
//! in this process or another, can learn the commit exists, and a failed
//! write fails the commit as it did before.
//!
//! Only appended frames are collected: a 24-byte header, then its page.
//! Anything else on the WAL file first writes what is collected: a read, a
//! sync, a truncation, its size, and any other write, which is written
//! through: the WAL's own header, a page written again in place, and a
//! frame's header rewritten right after SQLite read that frame (to fix the
//! checksums of frames a transaction wrote twice). What is collected goes to
//! the `unix` file in writes of at most 128 KiB, the most it takes at once.
//!
//! Frames a transaction spilled and then rolled back may still be collected
//! when it ends, and once its write lock is released another connection may
//! write its own frames where they would go. So the main database file is
//! this VFS's too: the `unix` file, except that releasing the WAL's write
//! lock (the end of every write transaction) first drops what its WAL still
//! collects, which no commit claimed. The WAL of a database file that does
//! not promise powersafe overwrite (where SQLite pads a commit and splits a
//! frame around a sync) is passed through unchanged, and so is every other
//! file.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name the gate's connections open their database with.
pub(crate) const NAME: &CStr = c"startgate-unix";

/// More than this many collected bytes are written at once (a large
/// transaction writes in pieces of about this size).
const COLLECT_LIMIT: usize = 256 * 1024;

/// The most one write to the `unix` VFS may carry: it keeps only the low 17
/// bits of a length (`seekAndWriteFd`), so a larger write reaches the file
/// short and fails as `SQLITE_FULL`.
const WRITE_LIMIT: usize = 0x1ffff;

/// The size of a WAL frame's header; its bytes 4..8 are non-zero in the
/// frame that commits a transaction.
const FRAME_HEADER: usize = 24;

/// Registers the VFS once per process; `Err` with SQLite's code if it could
/// not (the caller then opens with SQLite's default VFS).
pub(crate) fn register() -> Result<(), c_int> {
    static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find` returns a registered VFS (which lives as
        // long as the process) or NULL; the new VFS is leaked, so it too
        // outlives every connection, as `sqlite3_vfs_register` requires.
        unsafe {
            let unix = ffi::sqlite3_vfs_find(c"unix".as_ptr());
            if unix.is_null() {
                return Err(ffi::SQLITE_ERROR);
            }
            let _ = UNIX.set(Unix(unix));
            let inner = usize::try_from((*unix).szOsFile).map_err(|_| ffi::SQLITE_ERROR)?;
            let size = c_int::try_from(INNER_OFFSET + inner).map_err(|_| ffi::SQLITE_ERROR)?;
            let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
                szOsFile: size,
                pNext: ptr::null_mut(),
                zName: NAME.as_ptr(),
                xOpen: Some(open),
                ..*unix
            }));
            match ffi::sqlite3_vfs_register(vfs, 0) {
                ffi::SQLITE_OK => Ok(()),
                code => Err(code),
            }
        }
    })
}

/// SQLite's `unix` VFS, whose files this one opens.
struct Unix(*mut ffi::sqlite3_vfs);

// SAFETY: a registered VFS is immutable and used from every thread by SQLite itself.
unsafe impl Send for Unix {}
unsafe impl Sync for Unix {}

static UNIX: OnceLock<Unix> = OnceLock::new();

/// A WAL file: SQLite's `sqlite3_file` (which must come first), the frames
/// collected so far, then the `unix` VFS's own file at `INNER_OFFSET`.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    collected: Vec<u8>,
    /// The file offset of `collected[0]`.
    start: i64,
    /// Where the last read since the last write read: SQLite reads a whole
    /// frame just before it rewrites that frame's header in place.
    read_at: Option<i64>,
    /// A frame's header was collected: its page comes next.
    page_next: bool,
    /// That frame commits a transaction.
    commit: bool,
    /// The database file this WAL belongs to (null once that is closed).
    database: *mut DatabaseFile,
}

/// A main database file: SQLite's `sqlite3_file`, then the WAL file opened
/// for it while that collects (else null), then the `unix` VFS's own file
/// at `INNER_OFFSET`. Every method is the `unix` file's, except that
/// releasing the WAL's write lock first drops what its WAL still collects.
#[repr(C)]
struct DatabaseFile {
    base: ffi::sqlite3_file,
    wal: *mut WalFile,
}

const INNER_OFFSET: usize = {
    let wal = std::mem::size_of::<WalFile>();
    let database = std::mem::size_of::<DatabaseFile>();
    (if wal > database { wal } else { database }).next_multiple_of(16)
};

/// The shared-memory lock a writer holds for its whole write transaction
/// (SQLite's `WAL_WRITE_LOCK`).
const WAL_WRITE_LOCK: c_int = 0;

/// The `unix` VFS's file inside `file`.
///
/// # Safety
/// `file` was opened by [`open`] as a WAL or main database file.
unsafe fn inner(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    file.cast::<u8>().add(INNER_OFFSET).cast()
}

/// Calls the inner file's method `$name`, or answers `$none` (by default
/// `SQLITE_IOERR`) if it has none (the `unix` VFS has every method of
/// version 1).
macro_rules! forward {
    ($file:expr, $name:ident $(, $arg:expr)* ; or $none:expr) => {{
        let inner = inner($file);
        match (*(*inner).pMethods).$name {
            Some(method) => method(inner $(, $arg)*),
            None => $none,
        }
    }};
    ($file:expr, $name:ident $(, $arg:expr)*) => {
        forward!($file, $name $(, $arg)* ; or ffi::SQLITE_IOERR)
    };
}

/// Writes what is collected, then calls the inner file's method `$name`.
macro_rules! after_flush {
    ($file:expr, $name:ident $(, $arg:expr)*) => {{
        match flush($file) {
            ffi::SQLITE_OK => forward!($file, $name $(, $arg)*),
            code => code,
        }
    }};
}

// The methods below are SQLite's to call: each with a file this VFS opened,
// from one thread at a time (a connection's files are its own).

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(Unix(unix)) = UNIX.get() else {
        return ffi::SQLITE_ERROR;
    };
    let Some(unix_open) = (**unix).xOpen else {
        return ffi::SQLITE_ERROR;
    };
    // The `unix` file inside `file`, which gets this VFS's methods once open
    // (until then SQLite must see none, and so close nothing on a failure).
    let open_inside = || {
        (*file).pMethods = ptr::null();
        unix_open(*unix, name, inner(file), flags, out_flags)
    };
    if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
        let code = open_inside();
        if code != ffi::SQLITE_OK {
            return code;
        }
        ptr::write(
            file.cast::<DatabaseFile>(),
            DatabaseFile {
                base: ffi::sqlite3_file {
                    pMethods: &DATABASE,
                },
                wal: ptr::null_mut(),
            },
        );
        return ffi::SQLITE_OK;
    }
    let database = if flags & ffi::SQLITE_OPEN_WAL == 0 {
        None
    } else {
        collecting_database(name)
    };
    let Some(database) = database else {
        // Every other file, and the WAL of a database that does not promise
        // powersafe overwrite, is the `unix` VFS's own, in place: its
        // methods, no cost.
        return unix_open(*unix, name, file, flags, out_flags);
    };
    let code = open_inside();
    if code != ffi::SQLITE_OK {
        return code;
    }
    ptr::write(
        file.cast::<WalFile>(),
        WalFile {
            base: ffi::sqlite3_file {
                pMethods: &COLLECTING,
            },
            collected: Vec::new(),
            start: 0,
            read_at: None,
            page_next: false,
            commit: false,
            database,
        },
    );
    (*database).wal = file.cast();
    ffi::SQLITE_OK
}

/// The database file of the WAL `wal_name` if its WAL may collect: this VFS
/// opened it (so the end of each write transaction is seen, see
/// [`shm_lock`]), and it promises powersafe overwrite (without it SQLite pads
/// a commit to a sector boundary and splits a frame around a sync there).
///
/// # Safety
/// `wal_name` is the name SQLite passed to `xOpen` for a WAL file.
unsafe fn collecting_database(wal_name: *const c_char) -> Option<*mut DatabaseFile> {
    let database = ffi::sqlite3_database_file_object(wal_name);
    (!database.is_null()
        && ptr::eq((*database).pMethods, &DATABASE)
        && powersafe_database(database))
    .then(|| database.cast())
}

/// Whether `database` promises powersafe overwrite.
///
/// # Safety
/// `database` is an open file of this VFS.
unsafe fn powersafe_database(database: *mut ffi::sqlite3_file) -> bool {
    device_characteristics(database) & ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE != 0
}

/// Drops what `wal` collected: frames of a transaction that ended without
/// committing them (a commit writes its frames when its last page arrives).
/// Once its write lock is released another connection may write frames
/// where they were, so they must never reach the file.
///
/// # Safety
/// `wal` is a WAL file opened by [`open`].
unsafe fn discard(wal: *mut WalFile) {
    let wal = &mut *wal;
    if !wal.collected.is_empty() {
        #[cfg(test)]
        tests::DISCARDS.with(|count| count.set(count.get() + 1));
        wal.collected.clear();
    }
    wal.page_next = false;
    wal.read_at = None;
}

/// Writes what is collected.
///
/// # Safety
/// `file` is a WAL file opened by [`open`].
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = &mut *file.cast::<WalFile>();
    wal.page_next = false;
    if wal.collected.is_empty() {
        return ffi::SQLITE_OK;
    }
    #[cfg(test)]
    tests::COLLECTED_WRITES.with(|count| count.set(count.get() + 1));
    let mut code = ffi::SQLITE_OK;
    let mut offset = wal.start;
    for piece in wal.collected.chunks(WRITE_LIMIT) {
        // A piece is at most WRITE_LIMIT, which fits a c_int.
        let Ok(len) = c_int::try_from(piece.len()) else {
            code = ffi::SQLITE_IOERR_WRITE;
            break;
        };
        code = forward!(file, xWrite, piece.as_ptr().cast(), len, offset);
        if code != ffi::SQLITE_OK {
            break;
        }
        offset += i64::from(len);
    }
    // Written or not, these bytes are done with: a failed write fails the
    // transaction, and SQLite writes its frames again if it retries.
    wal.collected.clear();
    code
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let len = match usize::try_from(amount) {
        Ok(0) | Err(_) => return after_flush!(file, xWrite, data, amount, offset),
        Ok(len) => len,
    };
    let wal = &mut *file.cast::<WalFile>();
    let rewrite = wal.read_at.take() == Some(offset);
    // Collected: a frame's header, then its page, appended. A collection
    // starts with a header that is not a rewrite of the frame just read (a
    // checksum rewritten in place). Anything else is written through,
    // after what is collected.
    let collects = if wal.collected.is_empty() {
        len == FRAME_HEADER && !rewrite
    } else {
        usize::try_from(offset - wal.start).is_ok_and(|at| at == wal.collected.len())
            && (wal.page_next || len == FRAME_HEADER)
    };
    if !collects {
        #[cfg(test)]
        if len == FRAME_HEADER {
            tests::HEADERS_WRITTEN_THROUGH.with(|count| count.set(count.get() + 1));
        }
        return after_flush!(file, xWrite, data, amount, offset);
    }
    let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len);
    if wal.collected.is_empty() {
        wal.start = offset;
    }
    wal.collected.extend_from_slice(bytes);
    if wal.page_next {
        wal.page_next = false;
        // The commit is complete once its frame's page is in.
        if wal.commit || wal.collected.len() >= COLLECT_LIMIT {
            return flush(file);
        }
    } else {
        wal.page_next = true;
        wal.commit = bytes[4..8] != [0, 0, 0, 0];
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let flushed = flush(file);
    let closed = forward!(file, xClose);
    let database = (*file.cast::<WalFile>()).database;
    if !database.is_null() {
        (*database).wal = ptr::null_mut();
    }
    ptr::drop_in_place(file.cast::<WalFile>());
    (*file).pMethods = ptr::null();
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    data: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    (*file.cast::<WalFile>()).read_at = Some(offset);
    after_flush!(file, xRead, data, amount, offset)
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    after_flush!(file, xTruncate, size)
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    after_flush!(file, xSync, flags)
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    after_flush!(file, xFileSize, size)
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    after_flush!(file, xFileControl, op, arg)
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    forward!(file, xSectorSize; or 4096)
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    forward!(file, xDeviceCharacteristics; or 0)
}

unsafe extern "C" fn database_close(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = (*file.cast::<DatabaseFile>()).wal;
    if !wal.is_null() {
        (*wal).database = ptr::null_mut();
    }
    let closed = forward!(file, xClose);
    (*file).pMethods = ptr::null();
    closed
}

/// The end of a write transaction releases `WAL_WRITE_LOCK`: what the WAL
/// still collects then was never committed, and is dropped before another
/// connection can take the lock and write where it would have gone.
unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    if offset == WAL_WRITE_LOCK && flags == ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_EXCLUSIVE {
        let wal = (*file.cast::<DatabaseFile>()).wal;
        if !wal.is_null() {
            discard(wal);
        }
    }
    forward!(file, xShmLock, offset, n, flags)
}

/// Methods that only call the inner file's method of the same name.
macro_rules! forwarding {
    ($($name:ident => $method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            forward!(file, $method $(, $arg)*)
        }
    )*};
}

forwarding! {
    lock => xLock(level: c_int);
    unlock => xUnlock(level: c_int);
    check_reserved_lock => xCheckReservedLock(out: *mut c_int);
    database_read => xRead(data: *mut c_void, amount: c_int, offset: i64);
    database_write => xWrite(data: *const c_void, amount: c_int, offset: i64);
    database_truncate => xTruncate(size: i64);
    database_sync => xSync(flags: c_int);
    database_file_size => xFileSize(size: *mut i64);
    database_file_control => xFileControl(op: c_int, arg: *mut c_void);
    shm_map => xShmMap(region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void);
    shm_unmap => xShmUnmap(delete: c_int);
    fetch => xFetch(offset: i64, amount: c_int, out: *mut *mut c_void);
    unfetch => xUnfetch(offset: i64, page: *mut c_void);
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    forward!(file, xShmBarrier; or ())
}

/// A main database file's methods: the `unix` file's, but for [`shm_lock`].
static DATABASE: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(database_close),
    xRead: Some(database_read),
    xWrite: Some(database_write),
    xTruncate: Some(database_truncate),
    xSync: Some(database_sync),
    xFileSize: Some(database_file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(database_file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

/// Version 1: SQLite calls the shared-memory and memory-map methods on the
/// database file only, never on its WAL.
static COLLECTING: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    use rusqlite::{Connection, OpenFlags};
    use startgate_testkit::TempDb;

    use super::*;

    thread_local! {
        /// Writes of collected frames by this thread (SQLite calls the VFS
        /// in the thread that runs the statement).
        pub(crate) static COLLECTED_WRITES: Cell<u64> = const { Cell::new(0) };
        /// Frame headers written through (SQLite rewriting checksums in place).
        pub(crate) static HEADERS_WRITTEN_THROUGH: Cell<u64> = const { Cell::new(0) };
        /// Collections dropped at the end of a transaction that did not commit them.
        pub(crate) static DISCARDS: Cell<u64> = const { Cell::new(0) };
    }

    /// Writes of collected frames so far by this thread.
    pub(crate) fn collected_writes() -> u64 {
        COLLECTED_WRITES.with(Cell::get)
    }

    fn writer(path: &std::path::Path, uri_query: &str, settings: &str) -> Connection {
        register().unwrap();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI;
        let uri = format!("file:{}{uri_query}", path.display());
        let conn = Connection::open_with_flags_and_vfs(uri, flags, NAME.to_str().unwrap()).unwrap();
        conn.execute_batch(&format!("PRAGMA journal_mode = WAL; {settings}"))
            .unwrap();
        conn
    }

    /// A writer on `path` whose database has the tests' table `t`.
    fn writer_with_table(path: &std::path::Path, uri_query: &str, settings: &str) -> Connection {
        let conn = writer(path, uri_query, settings);
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, pad TEXT NOT NULL)",
        )
        .unwrap();
        conn
    }

    /// A reader on SQLite's own VFS: it sees exactly what is in the files.
    fn reader(path: &std::path::Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        conn
    }

    /// What a process starting now would read if the writer's process died
    /// here: a copy of the database and its WAL, without the shared memory,
    /// so SQLite rebuilds its WAL index from the frames and their checksums.
    fn after_a_crash(path: &std::path::Path) -> (i64, i64, i64) {
        let copy = TempDb::new("wal-vfs-crash");
        std::fs::copy(path, &copy.path).unwrap();
        let wal = |p: &std::path::Path| format!("{}-wal", p.display());
        std::fs::copy(wal(path), wal(&copy.path)).unwrap();
        content(&reader(&copy.path))
    }

    /// Once every writer closed: a fresh reader reads `expected`, and the
    /// database passes SQLite's integrity check.
    fn assert_intact(path: &std::path::Path, expected: (i64, i64, i64)) {
        let fresh = reader(path);
        assert_eq!(content(&fresh), expected);
        let check: String = fresh
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    /// (rows, sum of values, total length of the padding), as `conn` reads them.
    fn content(conn: &Connection) -> (i64, i64, i64) {
        conn.query_row(
            "SELECT count(*), coalesce(sum(v), 0), coalesce(sum(length(pad)), 0) FROM t",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap()
    }

    /// Every commit's frames are in the WAL file when the commit returns:
    /// after each of many transactions of every shape (small commits across
    /// checkpoints and restarts of the WAL, transactions that spill pages
    /// and write a page twice, so SQLite rewrites their frames' checksums,
    /// a rollback after a spill, the WAL truncated to its size limit), a
    /// reader on SQLite's own VFS reads what the writer committed, so does a
    /// process that recovers the files as they are (every frame's checksum
    /// is right on disk), and the database is intact. Collected writes
    /// happened: this is the VFS at work.
    #[test]
    fn every_commit_is_in_the_file_when_it_returns() {
        let db = TempDb::new("wal-vfs");
        let conn = writer_with_table(
            &db.path,
            "",
            "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 20; \
             PRAGMA cache_size = 8; PRAGMA journal_size_limit = 65536;",
        );
        conn.execute_batch("CREATE INDEX t_v ON t (v)").unwrap();
        let other = reader(&db.path);
        let before = collected_writes();
        let rewritten = HEADERS_WRITTEN_THROUGH.with(Cell::get);
        let mut expected = (0i64, 0i64, 0i64);
        for round in 0..60i64 {
            match round % 4 {
                // A small commit.
                0 | 1 => {
                    conn.execute("INSERT INTO t (v, pad) VALUES (?1, 'x')", [round])
                        .unwrap();
                    expected = (expected.0 + 1, expected.1 + round, expected.2 + 1);
                }
                // More pages than the cache holds, each page written twice,
                // and no checkpoint after the commit (which reads the WAL).
                2 => {
                    conn.execute_batch("PRAGMA wal_autocheckpoint = 0").unwrap();
                    let tx = conn.unchecked_transaction().unwrap();
                    for i in 0..200i64 {
                        tx.execute(
                            "INSERT INTO t (v, pad) VALUES (?1, printf('%.500c', 'p'))",
                            [i],
                        )
                        .unwrap();
                    }
                    tx.execute("UPDATE t SET pad = printf('%.400c', 'q') WHERE v < 200 AND length(pad) = 500", []).unwrap();
                    tx.commit().unwrap();
                    expected = (
                        expected.0 + 200,
                        expected.1 + 199 * 100,
                        expected.2 + 200 * 400,
                    );
                }
                // A spilled transaction rolled back, then a small commit.
                _ => {
                    let tx = conn.unchecked_transaction().unwrap();
                    for i in 0..200i64 {
                        tx.execute(
                            "INSERT INTO t (v, pad) VALUES (?1, printf('%.500c', 'r'))",
                            [i],
                        )
                        .unwrap();
                    }
                    tx.rollback().unwrap();
                    conn.execute(
                        "UPDATE t SET v = v + 1 WHERE id = (SELECT max(id) FROM t)",
                        [],
                    )
                    .unwrap();
                    expected.1 += 1;
                }
            }
            assert_eq!(content(&other), expected, "after round {round}");
            assert_eq!(after_a_crash(&db.path), expected, "after round {round}");
            conn.execute_batch("PRAGMA wal_autocheckpoint = 20")
                .unwrap();
        }
        assert!(collected_writes() > before + 30);
        // The transactions that wrote pages twice made SQLite rewrite checksums.
        assert!(HEADERS_WRITTEN_THROUGH.with(Cell::get) > rewritten);
        drop(conn);
        assert_intact(&db.path, expected);
    }

    /// With `synchronous = FULL` (a sync per commit) and on a device without
    /// powersafe overwrite (SQLite may pad and split frames; the VFS passes
    /// such a WAL through), commits are read back the same way.
    #[test]
    fn full_sync_and_padded_commits_are_in_the_file() {
        for (query, settings, collects) in [
            ("", "PRAGMA synchronous = FULL;", true),
            ("?psow=0", "PRAGMA synchronous = FULL;", false),
        ] {
            let db = TempDb::new("wal-vfs-sync");
            let conn = writer_with_table(&db.path, query, settings);
            let other = reader(&db.path);
            let before = collected_writes();
            for i in 0..30i64 {
                conn.execute(
                    "INSERT INTO t (v, pad) VALUES (?1, printf('%.300c', 'x'))",
                    [i],
                )
                .unwrap();
                assert_eq!(
                    content(&other),
                    (i + 1, i * (i + 1) / 2, (i + 1) * 300),
                    "{query}"
                );
            }
            let collected = collected_writes() - before;
            assert_eq!(
                collected > 0,
                collects,
                "{query}: {collected} collected writes"
            );
        }
    }

    /// A savepoint rolled back inside a transaction that commits: the
    /// frames spilled after the savepoint were collected; SQLite reads the
    /// WAL to undo them (which writes them) and then writes the rest of the
    /// transaction over them, from where the savepoint began. Only what the
    /// transaction finally holds is committed: a reader, a recovering
    /// process and the integrity check agree with it.
    #[test]
    fn a_savepoint_rolled_back_over_collected_frames_commits_what_remains() {
        let db = TempDb::new("wal-vfs-savepoint");
        let conn = writer_with_table(
            &db.path,
            "",
            "PRAGMA synchronous = NORMAL; PRAGMA cache_size = 8; PRAGMA wal_autocheckpoint = 0;",
        );
        conn.execute_batch("CREATE INDEX t_v ON t (v)").unwrap();
        let other = reader(&db.path);
        let before = collected_writes();
        let mut expected = (0i64, 0i64, 0i64);
        for round in 0..5i64 {
            conn.execute_batch(
                "BEGIN; \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) \
                 INSERT INTO t (v, pad) SELECT i, printf('%.500c', 'a') FROM n; \
                 SAVEPOINT s; \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
                 INSERT INTO t (v, pad) SELECT i, printf('%.500c', 'b') FROM n; \
                 UPDATE t SET v = v + 1000; \
                 ROLLBACK TO s; \
                 RELEASE s; \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20) \
                 INSERT INTO t (v, pad) SELECT i, printf('%.300c', 'c') FROM n; \
                 COMMIT;",
            )
            .unwrap();
            expected = (
                expected.0 + 70,
                expected.1 + 50 * 51 / 2 + 20 * 21 / 2,
                expected.2 + 50 * 500 + 20 * 300,
            );
            assert_eq!(content(&conn), expected, "round {round}: the writer");
            assert_eq!(content(&other), expected, "round {round}: a reader");
            assert_eq!(
                after_a_crash(&db.path),
                expected,
                "round {round}: recovered"
            );
        }
        // The rolled-back part spilled through the VFS's collection.
        assert!(collected_writes() > before + 5);
        drop(conn);
        assert_intact(&db.path, expected);
    }

    /// Frames a rolled-back transaction spilled are never written once its
    /// write lock is gone: after one connection spills pages and rolls back,
    /// another commits frames where the rolled-back ones were collected, and
    /// the first then reads the WAL and closes. The other's commit is what a
    /// reader, a recovering process and the integrity check find.
    #[test]
    fn a_rolled_back_spill_never_overwrites_a_later_commit() {
        let db = TempDb::new("wal-vfs-rollback");
        let settings = "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; \
                        PRAGMA cache_size = 8;";
        let first = writer(&db.path, "", settings);
        first
            .execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, pad TEXT NOT NULL); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
                 INSERT INTO t (v, pad) SELECT i, printf('%.300c', 'a') FROM n; \
                 PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .unwrap();
        let second = writer(&db.path, "", settings);
        let mut expected = content(&first);
        let discards = DISCARDS.with(Cell::get);
        for round in 0..5i64 {
            // Rewrites rows in place in pages read from the database file:
            // more pages than the cache holds, so some are spilled to the
            // WAL (collected), and no page SQLite reads back through its
            // rollback, so nothing writes them before the lock is released.
            second
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
            let tx = first.unchecked_transaction().unwrap();
            tx.execute(
                "UPDATE t SET pad = printf('%.300c', 'r') WHERE id <= 150",
                [],
            )
            .unwrap();
            tx.rollback().unwrap();
            second
                .execute(
                    "INSERT INTO t (v, pad) VALUES (?1, printf('%.300c', 'c'))",
                    [round],
                )
                .unwrap();
            expected = (expected.0 + 1, expected.1 + round, expected.2 + 300);
            assert_eq!(
                content(&first),
                expected,
                "round {round}, as the first reads it"
            );
            assert_eq!(content(&reader(&db.path)), expected, "round {round}");
            assert_eq!(after_a_crash(&db.path), expected, "round {round}");
        }
        // Each rollback left frames collected: the VFS dropped them.
        assert!(DISCARDS.with(Cell::get) > discards);
        drop(first);
        assert_eq!(
            content(&reader(&db.path)),
            expected,
            "after the first closed"
        );
        assert_eq!(after_a_crash(&db.path), expected, "after the first closed");
        drop(second);
        assert_intact(&db.path, expected);
    }

    /// A commit larger than one write to the `unix` VFS may carry (it keeps
    /// 17 bits of a length) is written in pieces: a transaction of about a
    /// megabyte of frames, in a cache that holds it all, commits, and is what
    /// a reader and a recovering process read.
    #[test]
    fn a_commit_larger_than_one_write_is_written_whole() {
        let db = TempDb::new("wal-vfs-large");
        let conn = writer_with_table(
            &db.path,
            "",
            "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;",
        );
        let before = collected_writes();
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
             INSERT INTO t (v, pad) SELECT i, printf('%.400c', 'a') FROM n",
        )
        .unwrap();
        let expected = (2000, 2000 * 2001 / 2, 2000 * 400);
        assert_eq!(content(&reader(&db.path)), expected);
        assert_eq!(after_a_crash(&db.path), expected);
        // About 1 MiB of frames: collected, in pieces of at most 256 KiB.
        assert!(collected_writes() - before >= 4);
    }

    /// Two connections of the VFS take turns on one file whose WAL restarts
    /// every few commits, each restart by either: both go on collecting
    /// (one write per commit, not a fallback to a write per frame once the
    /// other restarted the WAL), and a reader reads every commit.
    #[test]
    fn connections_taking_turns_across_restarts_collect_every_commit() {
        let db = TempDb::new("wal-vfs-turns");
        let settings = "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 4;";
        let first = writer_with_table(&db.path, "", settings);
        let second = writer(&db.path, "", settings);
        let other = reader(&db.path);
        let before = collected_writes();
        let commits = 200i64;
        for i in 0..commits {
            let conn = if i % 3 == 0 { &first } else { &second };
            conn.execute("INSERT INTO t (v, pad) VALUES (?1, 'x')", [i])
                .unwrap();
            assert_eq!(content(&other), (i + 1, i * (i + 1) / 2, i + 1));
        }
        let collected = collected_writes() - before;
        assert!(
            collected >= u64::try_from(commits).unwrap(),
            "{collected} collected writes for {commits} commits"
        );
    }
}
