//! PyTorch's file format, as `torch.save` writes it and `torch.load` reads it: a zip archive
//! (stored, not compressed) holding `NAME/data.pkl`, a pickle (protocol 2) of the saved object in
//! which every tensor refers to a raw little-endian storage `NAME/data/KEY`, plus the small records
//! `NAME/byteorder` and `NAME/version`.
//!
//! Only what state dicts and plain metadata dicts need is covered: None, booleans, integers,
//! floats, strings, tuples, lists, dicts, `OrderedDict`, global references (kept by name, never
//! resolved) and tensors of f32, f64 and complex64. Anything else is a clear error, never code
//! run: unlike Python's `pickle`, this reader cannot execute what a file names.

use crate::data::DataError;
use std::collections::HashMap;
use std::path::Path;

/// A pickled value.
#[derive(Debug, Clone, PartialEq)]
pub enum Py {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Py>),
    List(Vec<Py>),
    /// A dict or `OrderedDict`, in insertion order.
    Dict(Vec<(Py, Py)>),
    /// A reference to a module-level Python object (a function or class), by name.
    Global {
        module: String,
        name: String,
    },
    Tensor(TensorRef),
    /// A persistent storage reference (only inside a tensor's construction).
    Storage {
        dtype: DType,
        key: String,
    },
    /// Any other reduced object: the callable and its arguments.
    Object {
        callable: Box<Py>,
        args: Box<Py>,
    },
}

impl Py {
    pub fn str(s: &str) -> Py {
        Py::Str(s.to_string())
    }

    pub fn global(module: &str, name: &str) -> Py {
        Py::Global {
            module: module.into(),
            name: name.into(),
        }
    }

    /// The value at `key` of a dict with string keys.
    pub fn get(&self, key: &str) -> Option<&Py> {
        match self {
            Py::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(k, Py::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Py::None => "None".into(),
            Py::Bool(b) => if *b { "True" } else { "False" }.into(),
            Py::Int(i) => i.to_string(),
            Py::Float(f) => format!("{f}"),
            Py::Str(s) => format!("{s:?}"),
            Py::Tuple(v) | Py::List(v) => format!(
                "({})",
                v.iter().map(Py::describe).collect::<Vec<_>>().join(", ")
            ),
            Py::Dict(v) => format!("a dict of {} items", v.len()),
            Py::Global { module, name } => format!("{module}.{name}"),
            Py::Tensor(t) => format!("a {:?} tensor of shape {:?}", t.dtype, t.shape),
            Py::Storage { .. } => "a storage".into(),
            Py::Object { callable, .. } => format!("an object built by {}", callable.describe()),
        }
    }
}

/// Element types of the storages this module reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    /// Interleaved (re, im) pairs of f32.
    Complex64,
}

impl DType {
    fn storage_class(self) -> &'static str {
        match self {
            DType::F32 => "FloatStorage",
            DType::F64 => "DoubleStorage",
            DType::Complex64 => "ComplexFloatStorage",
        }
    }

    fn from_storage_class(name: &str) -> Option<Self> {
        [DType::F32, DType::F64, DType::Complex64]
            .into_iter()
            .find(|d| d.storage_class() == name)
    }

    /// Bytes per element.
    fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::Complex64 => 8,
        }
    }
}

/// A tensor in a pickle: where its values are and how they are laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub dtype: DType,
    /// The storage's record name under `data/`.
    pub key: String,
    /// Offset into the storage, in elements.
    pub offset: usize,
    pub shape: Vec<usize>,
    /// Strides in elements.
    pub stride: Vec<usize>,
}

/// A tensor's values, row-major (complex as interleaved re, im), as f64.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

impl TensorData {
    /// Real values of `shape`, stored as f32.
    pub fn f32(shape: &[usize], values: Vec<f64>) -> Self {
        Self {
            dtype: DType::F32,
            shape: shape.to_vec(),
            values,
        }
    }

    /// Elements (complex values count once).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A file written by `torch.save`, opened: its pickled object and its storages.
pub struct TorchFile {
    /// The unpickled object; tensors in it are [`Py::Tensor`] references into the storages.
    pub object: Py,
    storages: HashMap<String, Vec<u8>>,
    path: std::path::PathBuf,
}

impl TorchFile {
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let bytes = crate::files::read_bytes(path)?;
        let corrupt = |message: String| DataError::Corrupt {
            path: path.to_path_buf(),
            message,
        };
        let records = read_zip(&bytes).map_err(|m| {
            corrupt(format!(
                "not a PyTorch file (torch.save writes a zip archive): {m}"
            ))
        })?;
        let pickle_name = records
            .keys()
            .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
            .cloned()
            .ok_or_else(|| {
                corrupt(format!(
                    "no `NAME/data.pkl` record; the archive holds {}",
                    records.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
        let prefix = pickle_name.trim_end_matches("data.pkl").to_string();
        if let Some(order) = records.get(&format!("{prefix}byteorder")) {
            if order.as_slice() != b"little" {
                return Err(corrupt(format!(
                    "byte order {:?}; only little-endian files are read",
                    String::from_utf8_lossy(order)
                )));
            }
        }
        let object = Unpickler::new(&records[&pickle_name])
            .load()
            .map_err(|m| corrupt(format!("{pickle_name}: {m}")))?;
        let storages = records
            .into_iter()
            .filter_map(|(name, data)| {
                name.strip_prefix(&format!("{prefix}data/"))
                    .map(|key| (key.to_string(), data))
            })
            .collect();
        Ok(Self {
            object,
            storages,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The values of a tensor of this file.
    pub fn tensor(&self, t: &TensorRef) -> Result<TensorData, DataError> {
        let corrupt = |message: String| DataError::Corrupt {
            path: self.path.clone(),
            message,
        };
        let bytes = self
            .storages
            .get(&t.key)
            .ok_or_else(|| corrupt(format!("no storage record `data/{}`", t.key)))?;
        let size = t.dtype.size();
        let available = bytes.len() / size;
        if t.stride.len() != t.shape.len() {
            return Err(corrupt(format!(
                "a tensor of shape {:?} with strides {:?}",
                t.shape, t.stride
            )));
        }
        let numel: usize = t.shape.iter().product();
        // The furthest element read, to check the storage holds it before reading.
        let last = t.offset
            + t.shape
                .iter()
                .zip(&t.stride)
                .map(|(&n, &s)| n.saturating_sub(1) * s)
                .sum::<usize>();
        if numel > 0 && last >= available {
            return Err(corrupt(format!(
                "storage `data/{}` holds {available} elements; a tensor of shape {:?} needs {}",
                t.key,
                t.shape,
                last + 1
            )));
        }
        let read = |e: usize, into: &mut Vec<f64>| {
            let at = e * size;
            match t.dtype {
                DType::F32 => into.push(f32::from_le_bytes(
                    bytes[at..at + 4].try_into().expect("4 bytes"),
                ) as f64),
                DType::F64 => into.push(f64::from_le_bytes(
                    bytes[at..at + 8].try_into().expect("8 bytes"),
                )),
                DType::Complex64 => {
                    for part in 0..2 {
                        let p = at + 4 * part;
                        into.push(
                            f32::from_le_bytes(bytes[p..p + 4].try_into().expect("4 bytes")) as f64,
                        );
                    }
                }
            }
        };
        let mut values =
            Vec::with_capacity(numel * if t.dtype == DType::Complex64 { 2 } else { 1 });
        let mut index = vec![0usize; t.shape.len()];
        for _ in 0..numel {
            let e = t.offset
                + index
                    .iter()
                    .zip(&t.stride)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            read(e, &mut values);
            for a in (0..index.len()).rev() {
                index[a] += 1;
                if index[a] < t.shape[a] {
                    break;
                }
                index[a] = 0;
            }
        }
        Ok(TensorData {
            dtype: t.dtype,
            shape: t.shape.clone(),
            values,
        })
    }
}

/// Writes `object` as `torch.save` would, with `tensors` (referred to in `object` as
/// [`Py::Tensor`] with keys `"0"`, `"1"`, … in this order) as its storages. `archive` names the
/// archive's top directory (torch uses the file's stem).
pub fn save(
    path: &Path,
    archive: &str,
    object: &Py,
    tensors: &[TensorData],
) -> Result<(), DataError> {
    let mut pickle = Pickler::default();
    pickle.dump(object);
    let mut records: Vec<(String, Vec<u8>)> = vec![
        (format!("{archive}/data.pkl"), pickle.out),
        (format!("{archive}/byteorder"), b"little".to_vec()),
    ];
    for (key, t) in tensors.iter().enumerate() {
        let mut bytes = Vec::with_capacity(t.values.len() * 4);
        for &v in &t.values {
            match t.dtype {
                DType::F32 | DType::Complex64 => bytes.extend((v as f32).to_le_bytes()),
                DType::F64 => bytes.extend(v.to_le_bytes()),
            }
        }
        records.push((format!("{archive}/data/{key}"), bytes));
    }
    records.push((format!("{archive}/version"), b"3\n".to_vec()));
    crate::files::write_bytes_atomic(path, &write_zip(&records))?;
    Ok(())
}

/// A [`Py::Tensor`] for the `key`-th tensor given to [`save`]: contiguous, offset 0.
pub fn tensor_ref(key: usize, t: &TensorData) -> Py {
    let mut stride = vec![1usize; t.shape.len()];
    for a in (0..t.shape.len().saturating_sub(1)).rev() {
        stride[a] = stride[a + 1] * t.shape[a + 1];
    }
    Py::Tensor(TensorRef {
        dtype: t.dtype,
        key: key.to_string(),
        offset: 0,
        shape: t.shape.clone(),
        stride,
    })
}

// ---------------------------------------------------------------------------------------------
// Zip (stored entries only, as torch writes them).

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
/// torch aligns each record's data to 64 bytes (so storages can be memory-mapped); the padding
/// goes in an extra field with this id ("FB"), as torch's writer does.
const ALIGN: usize = 64;
const PAD_ID: u16 = 0x4246;

fn write_zip(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in records {
        let offset = out.len();
        let crc = crc32fast::hash(data);
        let fixed = offset + 30 + name.len();
        // An extra field is at least 4 bytes (id, length); pad so the data starts aligned.
        let pad = (ALIGN - (fixed + 4) % ALIGN) % ALIGN;
        let put16 = |v: &mut Vec<u8>, x: u16| v.extend(x.to_le_bytes());
        let put32 = |v: &mut Vec<u8>, x: u32| v.extend(x.to_le_bytes());
        put32(&mut out, LOCAL);
        put16(&mut out, 20); // version needed
        put16(&mut out, 0); // flags
        put16(&mut out, 0); // stored
        put32(&mut out, 0); // time, date
        put32(&mut out, crc);
        put32(&mut out, data.len() as u32);
        put32(&mut out, data.len() as u32);
        put16(&mut out, name.len() as u16);
        put16(&mut out, (4 + pad) as u16);
        out.extend(name.as_bytes());
        put16(&mut out, PAD_ID);
        put16(&mut out, pad as u16);
        out.extend(std::iter::repeat_n(b'Z', pad));
        out.extend(data);

        put32(&mut central, CENTRAL);
        put16(&mut central, 20); // made by
        put16(&mut central, 20); // needed
        put16(&mut central, 0);
        put16(&mut central, 0);
        put32(&mut central, 0);
        put32(&mut central, crc);
        put32(&mut central, data.len() as u32);
        put32(&mut central, data.len() as u32);
        put16(&mut central, name.len() as u16);
        put16(&mut central, 0); // extra
        put16(&mut central, 0); // comment
        put16(&mut central, 0); // disk
        put16(&mut central, 0); // internal attributes
        put32(&mut central, 0); // external attributes
        put32(&mut central, offset as u32);
        central.extend(name.as_bytes());
    }
    let (start, size) = (out.len(), central.len());
    out.extend(central);
    out.extend(END.to_le_bytes());
    out.extend([0u8; 4]); // disk numbers
    out.extend((records.len() as u16).to_le_bytes());
    out.extend((records.len() as u16).to_le_bytes());
    out.extend((size as u32).to_le_bytes());
    out.extend((start as u32).to_le_bytes());
    out.extend([0u8; 2]); // comment length
    out
}

fn read_zip(bytes: &[u8]) -> Result<HashMap<String, Vec<u8>>, String> {
    let u16_at = |at: usize| -> Result<usize, String> {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
            .ok_or_else(|| "truncated".to_string())
    };
    let u32_at = |at: usize| -> Result<usize, String> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| "truncated".to_string())
    };
    // The end record is the last 22 bytes, unless a comment (at most 64 KiB) follows it.
    let lowest = bytes.len().saturating_sub(22 + 65_535);
    let end = (lowest..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&at| u32_at(at) == Ok(END as usize))
        .ok_or("no end-of-archive record")?;
    let (count, start) = (u16_at(end + 10)?, u32_at(end + 16)?);
    if start == 0xFFFF_FFFF || count == 0xFFFF {
        return Err("a zip64 archive (over 4 GiB), which is not supported".into());
    }
    let mut records = HashMap::new();
    let mut at = start;
    for _ in 0..count {
        if u32_at(at)? != CENTRAL as usize {
            return Err(format!("bad central directory entry at byte {at}"));
        }
        let method = u16_at(at + 10)?;
        let size = u32_at(at + 20)?;
        let (name_len, extra_len, comment_len) =
            (u16_at(at + 28)?, u16_at(at + 30)?, u16_at(at + 32)?);
        let local = u32_at(at + 42)?;
        let name = bytes.get(at + 46..at + 46 + name_len).ok_or("truncated")?;
        let name = String::from_utf8_lossy(name).into_owned();
        if method != 0 {
            return Err(format!(
                "record `{name}` is compressed (method {method}); torch.save stores records uncompressed"
            ));
        }
        if u32_at(local)? != LOCAL as usize {
            return Err(format!("bad local header for `{name}`"));
        }
        let data_at = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        let data = bytes
            .get(data_at..data_at + size)
            .ok_or_else(|| format!("record `{name}` runs past the end of the file"))?;
        if crc32fast::hash(data) as usize != u32_at(at + 16)? {
            return Err(format!("record `{name}` fails its CRC check"));
        }
        records.insert(name, data.to_vec());
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(records)
}

// ---------------------------------------------------------------------------------------------
// Pickle, protocol 2.

mod op {
    pub const PROTO: u8 = 0x80;
    pub const FRAME: u8 = 0x95;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const LONG1: u8 = 0x8a;
    pub const BINFLOAT: u8 = b'G';
    pub const BINUNICODE: u8 = b'X';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const EMPTY_TUPLE: u8 = b')';
    pub const TUPLE: u8 = b't';
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const EMPTY_LIST: u8 = b']';
    pub const APPEND: u8 = b'a';
    pub const APPENDS: u8 = b'e';
    pub const EMPTY_DICT: u8 = b'}';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const GLOBAL: u8 = b'c';
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const REDUCE: u8 = b'R';
    pub const BUILD: u8 = b'b';
    pub const BINPERSID: u8 = b'Q';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const MEMOIZE: u8 = 0x94;
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
}

#[derive(Default)]
struct Pickler {
    out: Vec<u8>,
}

impl Pickler {
    fn dump(&mut self, v: &Py) {
        self.out.extend([op::PROTO, 2]);
        self.value(v);
        self.out.push(op::STOP);
    }

    fn int(&mut self, i: i64) {
        if (0..256).contains(&i) {
            self.out.extend([op::BININT1, i as u8]);
        } else if (0..65_536).contains(&i) {
            self.out.push(op::BININT2);
            self.out.extend((i as u16).to_le_bytes());
        } else if i32::try_from(i).is_ok() {
            self.out.push(op::BININT);
            self.out.extend((i as i32).to_le_bytes());
        } else {
            self.out.extend([op::LONG1, 8]);
            self.out.extend(i.to_le_bytes());
        }
    }

    fn global(&mut self, module: &str, name: &str) {
        self.out.push(op::GLOBAL);
        self.out.extend(format!("{module}\n{name}\n").as_bytes());
    }

    fn tuple(&mut self, items: impl IntoIterator<Item = Py>) {
        self.out.push(op::MARK);
        for v in items {
            self.value(&v);
        }
        self.out.push(op::TUPLE);
    }

    fn value(&mut self, v: &Py) {
        match v {
            Py::None => self.out.push(op::NONE),
            Py::Bool(b) => self.out.push(if *b { op::NEWTRUE } else { op::NEWFALSE }),
            Py::Int(i) => self.int(*i),
            Py::Float(f) => {
                self.out.push(op::BINFLOAT);
                self.out.extend(f.to_be_bytes());
            }
            Py::Str(s) => {
                self.out.push(op::BINUNICODE);
                self.out.extend((s.len() as u32).to_le_bytes());
                self.out.extend(s.as_bytes());
            }
            Py::Tuple(items) => self.tuple(items.iter().cloned()),
            Py::List(items) => {
                self.out.extend([op::EMPTY_LIST, op::MARK]);
                items.iter().for_each(|v| self.value(v));
                self.out.push(op::APPENDS);
            }
            Py::Dict(items) => {
                // An OrderedDict, as torch saves state dicts.
                self.global("collections", "OrderedDict");
                self.out.extend([op::EMPTY_TUPLE, op::REDUCE, op::MARK]);
                for (k, v) in items {
                    self.value(k);
                    self.value(v);
                }
                self.out.push(op::SETITEMS);
            }
            Py::Global { module, name } => self.global(module, name),
            Py::Tensor(t) => {
                let int = |x: usize| Py::Int(x as i64);
                self.global("torch._utils", "_rebuild_tensor_v2");
                self.out.push(op::MARK);
                let numel: usize = t.shape.iter().product();
                self.tuple([
                    Py::str("storage"),
                    Py::global("torch", t.dtype.storage_class()),
                    Py::Str(t.key.clone()),
                    Py::str("cpu"),
                    int(t.offset + numel),
                ]);
                self.out.push(op::BINPERSID);
                self.int(t.offset as i64);
                self.tuple(t.shape.iter().map(|&n| int(n)));
                self.tuple(t.stride.iter().map(|&s| int(s)));
                self.value(&Py::Bool(false));
                self.value(&Py::Dict(Vec::new()));
                self.out.extend([op::TUPLE, op::REDUCE]);
            }
            Py::Storage { .. } | Py::Object { .. } => {
                unreachable!("only read, never written: {}", v.describe())
            }
        }
    }
}

/// A stack entry: a value, or a MARK.
enum Slot {
    Mark,
    Value(Py),
}

struct Unpickler<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Slot>,
    memo: HashMap<usize, Py>,
}

impl<'a> Unpickler<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            at: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        self.at += n;
        Ok(s)
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.at..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("unterminated GLOBAL")?;
        self.at += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    fn pop(&mut self) -> Result<Py, String> {
        match self.stack.pop() {
            Some(Slot::Value(v)) => Ok(v),
            Some(Slot::Mark) => Err("a MARK where a value was expected".into()),
            None => Err("stack underflow".into()),
        }
    }

    fn push(&mut self, v: Py) {
        self.stack.push(Slot::Value(v));
    }

    fn pop_mark(&mut self) -> Result<Vec<Py>, String> {
        let mut items = Vec::new();
        loop {
            match self.stack.pop() {
                Some(Slot::Value(v)) => items.push(v),
                Some(Slot::Mark) => break,
                None => return Err("no MARK on the stack".into()),
            }
        }
        items.reverse();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut Py, String> {
        match self.stack.last_mut() {
            Some(Slot::Value(v)) => Ok(v),
            _ => Err("no object on the stack".into()),
        }
    }

    fn memo_put(&mut self, key: usize) -> Result<(), String> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Py>) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of values".into());
        }
        let target = self.top()?;
        let Py::Dict(d) = target else {
            return Err(format!("SETITEM on {}", target.describe()));
        };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.retain(|(old, _)| *old != k);
            d.push((k, v));
        }
        Ok(())
    }

    fn load(mut self) -> Result<Py, String> {
        loop {
            let at = self.at;
            let code = self.take(1)?[0];
            match code {
                op::PROTO => {
                    let p = self.take(1)?[0];
                    if p > 5 {
                        return Err(format!("pickle protocol {p}"));
                    }
                }
                op::FRAME => {
                    self.take(8)?;
                }
                op::STOP => return self.pop(),
                op::MARK => self.stack.push(Slot::Mark),
                op::NONE => self.push(Py::None),
                op::NEWTRUE => self.push(Py::Bool(true)),
                op::NEWFALSE => self.push(Py::Bool(false)),
                op::BININT => {
                    let b = self.take(4)?;
                    self.push(Py::Int(i32::from_le_bytes(b.try_into().expect("4")) as i64));
                }
                op::BININT1 => {
                    let b = self.take(1)?[0];
                    self.push(Py::Int(b as i64));
                }
                op::BININT2 => {
                    let b = self.take(2)?;
                    self.push(Py::Int(u16::from_le_bytes([b[0], b[1]]) as i64));
                }
                op::LONG1 => {
                    let n = self.take(1)?[0] as usize;
                    if n > 8 {
                        return Err(format!("an integer of {n} bytes"));
                    }
                    let b = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, &byte) in b.iter().enumerate() {
                        v |= (byte as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(Py::Int(v));
                }
                op::BINFLOAT => {
                    let b = self.take(8)?;
                    self.push(Py::Float(f64::from_be_bytes(b.try_into().expect("8"))));
                }
                op::BINUNICODE | op::SHORT_BINUNICODE => {
                    let n = if code == op::BINUNICODE {
                        u32::from_le_bytes(self.take(4)?.try_into().expect("4")) as usize
                    } else {
                        self.take(1)?[0] as usize
                    };
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.push(Py::Str(s));
                }
                op::EMPTY_TUPLE => self.push(Py::Tuple(Vec::new())),
                op::TUPLE => {
                    let items = self.pop_mark()?;
                    self.push(Py::Tuple(items));
                }
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = (code - op::TUPLE1 + 1) as usize;
                    let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>, _>>()?;
                    items.reverse();
                    self.push(Py::Tuple(items));
                }
                op::EMPTY_LIST => self.push(Py::List(Vec::new())),
                op::APPEND | op::APPENDS => {
                    let items = if code == op::APPEND {
                        vec![self.pop()?]
                    } else {
                        self.pop_mark()?
                    };
                    match self.top()? {
                        Py::List(l) => l.extend(items),
                        other => return Err(format!("APPEND on {}", other.describe())),
                    }
                }
                op::EMPTY_DICT => self.push(Py::Dict(Vec::new())),
                op::SETITEM => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                op::SETITEMS => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                op::GLOBAL => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Py::Global { module, name });
                }
                op::STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Py::Str(module), Py::Str(name)) => self.push(Py::Global { module, name }),
                        _ => return Err("STACK_GLOBAL without two strings".into()),
                    }
                }
                op::BINPERSID => {
                    let pid = self.pop()?;
                    self.push(storage(pid)?);
                }
                op::REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.push(reduce(callable, args)?);
                }
                op::BUILD => {
                    // Object state (e.g. an OrderedDict's `_metadata` of module versions): the
                    // object itself is all a state dict needs.
                    self.pop()?;
                }
                op::BINPUT => {
                    let k = self.take(1)?[0] as usize;
                    self.memo_put(k)?;
                }
                op::LONG_BINPUT => {
                    let k = u32::from_le_bytes(self.take(4)?.try_into().expect("4")) as usize;
                    self.memo_put(k)?;
                }
                op::MEMOIZE => {
                    let k = self.memo.len();
                    self.memo_put(k)?;
                }
                op::BINGET | op::LONG_BINGET => {
                    let k = if code == op::BINGET {
                        self.take(1)?[0] as usize
                    } else {
                        u32::from_le_bytes(self.take(4)?.try_into().expect("4")) as usize
                    };
                    let v = self
                        .memo
                        .get(&k)
                        .cloned()
                        .ok_or_else(|| format!("memo entry {k} read before it was written"))?;
                    self.push(v);
                }
                other => {
                    return Err(format!(
                        "pickle opcode 0x{other:02x} at byte {at}, which a state dict does not use"
                    ))
                }
            }
        }
    }
}

/// A persistent id `('storage', torch.<Type>Storage, key, location, numel)`.
fn storage(pid: Py) -> Result<Py, String> {
    if let Py::Tuple(items) = &pid {
        if let [Py::Str(tag), Py::Global { module, name }, Py::Str(key), ..] = items.as_slice() {
            if tag == "storage" && module == "torch" {
                let dtype = DType::from_storage_class(name).ok_or_else(|| {
                    format!("a tensor stored as torch.{name}; only float32, float64 and complex64 are read")
                })?;
                return Ok(Py::Storage {
                    dtype,
                    key: key.clone(),
                });
            }
        }
    }
    Err(format!("persistent id {}", pid.describe()))
}

fn usize_tuple(v: &Py, what: &str) -> Result<Vec<usize>, String> {
    match v {
        Py::Tuple(items) => items
            .iter()
            .map(|i| match i {
                Py::Int(n) if *n >= 0 => Ok(*n as usize),
                other => Err(format!("{what}: {}", other.describe())),
            })
            .collect(),
        other => Err(format!("{what}: {}", other.describe())),
    }
}

/// What REDUCE builds: tensors and dicts are understood; anything else is kept by name.
fn reduce(callable: Py, args: Py) -> Result<Py, String> {
    let Py::Global { module, name } = &callable else {
        return Ok(Py::Object {
            callable: Box::new(callable),
            args: Box::new(args),
        });
    };
    match (module.as_str(), name.as_str(), &args) {
        ("collections", "OrderedDict", _) => Ok(Py::Dict(Vec::new())),
        ("torch._utils", "_rebuild_tensor_v2", Py::Tuple(a)) if a.len() >= 4 => {
            let Py::Storage { dtype, key } = &a[0] else {
                return Err(format!("a tensor whose storage is {}", a[0].describe()));
            };
            let Py::Int(offset) = a[1] else {
                return Err(format!("a tensor offset {}", a[1].describe()));
            };
            Ok(Py::Tensor(TensorRef {
                dtype: *dtype,
                key: key.clone(),
                offset: offset.max(0) as usize,
                shape: usize_tuple(&a[2], "a tensor shape")?,
                stride: usize_tuple(&a[3], "a tensor stride")?,
            }))
        }
        ("torch._utils", "_rebuild_parameter", Py::Tuple(a)) if !a.is_empty() => Ok(a[0].clone()),
        _ => Ok(Py::Object {
            callable: Box::new(callable),
            args: Box::new(args),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_dict_of_tensors_and_values_reads_back_exactly() {
        let dir = std::env::temp_dir().join(format!("pdekit-torchfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.pt");
        let tensors = vec![
            TensorData::f32(&[2, 3], vec![1.0, -2.5, 3.0, 0.125, 5.0, 6.0]),
            TensorData {
                dtype: DType::Complex64,
                shape: vec![2],
                values: vec![1.0, 2.0, -3.0, 4.0],
            },
            TensorData {
                dtype: DType::F64,
                shape: vec![1],
                values: vec![std::f64::consts::PI],
            },
        ];
        let object = Py::Dict(vec![
            (Py::str("a"), tensor_ref(0, &tensors[0])),
            (Py::str("b"), tensor_ref(1, &tensors[1])),
            (Py::str("c"), tensor_ref(2, &tensors[2])),
            (
                Py::str("meta"),
                Py::Dict(vec![
                    (Py::str("n"), Py::Tuple(vec![Py::Int(12), Py::Int(70_000)])),
                    (Py::str("big"), Py::Int(-5_000_000_000)),
                    (Py::str("f"), Py::Float(0.5)),
                    (Py::str("none"), Py::None),
                    (Py::str("yes"), Py::Bool(true)),
                    (Py::str("act"), Py::global("torch._C._nn", "gelu")),
                    (Py::str("list"), Py::List(vec![Py::str("x")])),
                ]),
            ),
        ]);
        save(&path, "t", &object, &tensors).unwrap();
        let file = TorchFile::open(&path).unwrap();
        assert_eq!(file.object, object);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let Some(Py::Tensor(t)) = file.object.get(name) else {
                panic!("{name}")
            };
            assert_eq!(file.tensor(t).unwrap(), tensors[i]);
        }
        // A transposed view reads in its logical order.
        let Some(Py::Tensor(a)) = file.object.get("a") else {
            panic!()
        };
        let transposed = TensorRef {
            shape: vec![3, 2],
            stride: vec![1, 3],
            ..a.clone()
        };
        assert_eq!(
            file.tensor(&transposed).unwrap().values,
            vec![1.0, 0.125, -2.5, 5.0, 3.0, 6.0]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_or_foreign_files_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("pdekit-torchbad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = TorchFile::open(&dir.join("none.pt")).err().unwrap();
        assert!(missing.to_string().contains("no such file"), "{missing}");
        let text = dir.join("text.pt");
        std::fs::write(&text, "not a zip").unwrap();
        let e = TorchFile::open(&text).err().unwrap().to_string();
        assert!(e.contains("text.pt") && e.contains("zip archive"), "{e}");
        // A flipped byte in a storage fails the CRC.
        let good = dir.join("good.pt");
        let t = TensorData::f32(&[4], vec![1.0, 2.0, 3.0, 4.0]);
        save(
            &good,
            "good",
            &Py::Dict(vec![(Py::str("w"), tensor_ref(0, &t))]),
            &[t],
        )
        .unwrap();
        let mut bytes = std::fs::read(&good).unwrap();
        let at = bytes
            .windows(4)
            .position(|w| w == 1.0f32.to_le_bytes())
            .unwrap();
        bytes[at] ^= 1;
        let bad = dir.join("bad.pt");
        std::fs::write(&bad, &bytes).unwrap();
        let e = TorchFile::open(&bad).err().unwrap().to_string();
        assert!(e.contains("CRC"), "{e}");
        // A pickle that would run code names what it is and is refused.
        let evil = write_zip(&[(
            "evil/data.pkl".into(),
            [
                &[op::PROTO, 2][..],
                b"cos\nsystem\n(X\x02\x00\x00\x00lst",
                &[op::REDUCE, op::STOP],
            ]
            .concat(),
        )]);
        let path = dir.join("evil.pt");
        std::fs::write(&path, evil).unwrap();
        let file = TorchFile::open(&path).unwrap();
        assert!(
            matches!(file.object, Py::Object { .. }),
            "kept as data, never run"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
