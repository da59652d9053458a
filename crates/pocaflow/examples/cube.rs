//! Spins a shaded cube in the terminal; each frame's rotation is one `pocaflow::matmul`. The
//! twin of `python -m pocaflow.demos.cube` (whose docstring states the rules both follow): the
//! same flags, the same frames, character for character.
//!
//! ```text
//! cargo run --release --example cube -- [--frames N] [--fps F] [--size S]
//! ```
//!
//! `--frames 0` spins until Ctrl-C or `q`; `--fps 0` draws as fast as it can. The frame rate
//! (render time per frame without the pacing sleep, and the rate frames were shown at) goes to
//! stderr at the end. On a terminal the frames are drawn in place on the alternate screen with
//! the cursor hidden; the standard library has no signal handlers without `unsafe`, so the
//! terminal's Ctrl-C signal is turned off with `stty` while it runs and Ctrl-C arrives as a key,
//! after which the screen, cursor and `stty` settings are restored (also on a panic). Without a
//! terminal on stdin and stdout, or without `stty`, the frames are printed one after another.

use ndarray::Array2;
use std::io::{IsTerminal, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Dark to bright; one character per twelfth of the light's cosine range [0, 1].
const RAMP: &[u8] = b".,-~:;=!*#$@";
/// The camera's distance from the cube's centre.
const DISTANCE: f64 = 5.0;
/// The smallest and largest `--size`.
const SIZES: std::ops::RangeInclusive<usize> = 4..=400;
/// The frame rate the demo paces itself to without `--fps`.
const DEFAULT_FPS: f64 = 30.0;
/// Frames drawn without `--frames` (5 seconds at the default rate).
const DEFAULT_FRAMES: u64 = 150;
/// Switches to the alternate screen and hides the cursor.
const ENTER: &str = "\x1b[?1049h\x1b[?25l";
/// Shows the cursor and switches back to the main screen.
const LEAVE: &str = "\x1b[?25h\x1b[?1049l";
/// Moves the cursor to the top left corner.
const HOME: &str = "\x1b[H";
/// The command line, for `--help` and errors.
const USAGE: &str = "usage: cube [--frames N (0: until Ctrl-C)] [--fps F (0: unpaced)] [--size S]";

/// Where the light is: up and to the left of the camera (which sits at `(0, 0, -DISTANCE)`).
const LIGHT_POSITION: [f64; 3] = [-2.0, 3.0, -6.0];

/// The rotation angles `[ax, ay, az]` in radians of frame `frame` (0 is the first).
fn angles_at(frame: u64) -> [f64; 3] {
    let k = frame as f64;
    [-0.5 + 0.05 * k, 0.6 + 0.07 * k, 0.15 + 0.03 * k]
}

/// `R^T` for `R = Rz(az) Ry(ay) Rx(ax)`: row vectors times it are rotated by `R`. The entries
/// are the Python demo's, term for term, so both compute the same bits.
fn rotation(angles: [f64; 3]) -> Array2<f64> {
    let (sx, cx) = angles[0].sin_cos();
    let (sy, cy) = angles[1].sin_cos();
    let (sz, cz) = angles[2].sin_cos();
    let r = ndarray::array![
        [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
        [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
        [-sy, cy * sx, cy * cx],
    ];
    Array2::from_shape_fn((3, 3), |(i, j)| r[[j, i]])
}

/// Points per face edge: about 0.5 columns apart on the screen at the nearest, no holes.
fn grid_size(size: usize) -> usize {
    3 * size / 2
}

/// The face points (face after face: normals +x, -x, +y, -y, +z, -z; row-major in the face's
/// two other axes, at the centres of an `m x m` grid) and then the six face normals.
fn surface(size: usize) -> Array2<f64> {
    let m = grid_size(size);
    let u: Vec<f64> = (0..m)
        .map(|i| (2.0 * i as f64 + 1.0) / m as f64 - 1.0)
        .collect();
    let mut rows = Vec::with_capacity(6 * m * m + 6);
    let faces = (0..3).flat_map(|axis| [(axis, 1.0), (axis, -1.0)]);
    for (axis, sign) in faces.clone() {
        let others: Vec<usize> = (0..3).filter(|&k| k != axis).collect();
        for &a in &u {
            for &b in &u {
                let mut p = [0.0; 3];
                p[axis] = sign;
                p[others[0]] = a;
                p[others[1]] = b;
                rows.push(p);
            }
        }
    }
    for (axis, sign) in faces {
        let mut n = [0.0; 3];
        n[axis] = sign;
        rows.push(n);
    }
    Array2::from(rows)
}

/// The index into [`RAMP`] of point `p` on a face with (rotated) normal `n`: `floor(12 n . l)`
/// clipped to the ramp, `l` the unit vector from `p` towards the light.
fn shade_level(p: [f64; 3], n: [f64; 3]) -> usize {
    let d = [
        LIGHT_POSITION[0] - p[0],
        LIGHT_POSITION[1] - p[1],
        LIGHT_POSITION[2] - p[2],
    ];
    let dot = n[0] * d[0] + n[1] * d[1] + n[2] * d[2];
    let lum = dot / (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    (12.0 * lum).floor().clamp(0.0, (RAMP.len() - 1) as f64) as usize
}

/// The depth buffer: each of the `width * height` cells' nearest point (the later one on a
/// tie), among the `rotated` points of the faces that face the camera.
fn nearest_points(rotated: &Array2<f64>, width: usize, height: usize) -> Vec<Option<usize>> {
    let per_face = (rotated.nrows() - 6) / 6;
    let (kx, half_w, half_h) = (1.2 * width as f64, width as f64 / 2.0, height as f64 / 2.0);
    let ky = kx / 2.0;
    let faces_camera = |face: usize| DISTANCE * rotated[[6 * per_face + face, 2]] < -1.0;
    let points = (0..6)
        .filter(|&face| faces_camera(face))
        .flat_map(|face| face * per_face..(face + 1) * per_face);
    let mut depth = vec![f64::NEG_INFINITY; width * height];
    let mut nearest = vec![None; width * height];
    for i in points {
        let q = 1.0 / (rotated[[i, 2]] + DISTANCE);
        let col = (half_w + kx * rotated[[i, 0]] * q).floor();
        let row = (half_h - ky * rotated[[i, 1]] * q).floor();
        if col < 0.0 || col >= width as f64 || row < 0.0 || row >= height as f64 {
            continue;
        }
        let cell = row as usize * width + col as usize;
        if q >= depth[cell] {
            depth[cell] = q;
            nearest[cell] = Some(i);
        }
    }
    nearest
}

/// The frame for rotation `angles` as `size / 2` lines of `size` characters joined by newlines
/// (no trailing newline); `surface` is [`surface`]`(size)`. The rotation is one
/// `pocaflow::matmul`.
fn render(angles: [f64; 3], size: usize, surface: &Array2<f64>) -> String {
    let rotated = pocaflow::matmul(surface.view(), rotation(angles).view());
    let per_face = grid_size(size).pow(2);
    let row3 = |i: usize| [rotated[[i, 0]], rotated[[i, 1]], rotated[[i, 2]]];
    let shade = |i: usize| RAMP[shade_level(row3(i), row3(6 * per_face + i / per_face))];
    let nearest = nearest_points(&rotated, size, size / 2);
    let text: Vec<u8> = nearest.iter().map(|p| p.map_or(b' ', shade)).collect();
    let lines: Vec<&str> = text
        .chunks(size)
        .map(|line| std::str::from_utf8(line).expect("the ramp is ASCII"))
        .collect();
    lines.join("\n")
}

/// The command line's settings.
#[derive(Debug, PartialEq)]
struct Args {
    /// Frames to draw; 0 draws until Ctrl-C.
    frames: u64,
    /// Frames per second; 0 draws as fast as possible.
    fps: f64,
    /// The frame width; `None` fits the terminal (at most 60).
    size: Option<usize>,
}

impl Args {
    /// Parses `--frames N`, `--fps F` and `--size S` (a flag given twice takes its last value).
    fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut args = Args {
            frames: DEFAULT_FRAMES,
            fps: DEFAULT_FPS,
            size: None,
        };
        while let Some(flag) = argv.next() {
            let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bad = |what: &str| format!("{flag}: {what}, got {value:?}");
            match flag.as_str() {
                "--frames" => args.frames = value.parse().map_err(|_| bad("not a count"))?,
                "--fps" => match value.parse::<f64>() {
                    Ok(fps) if fps >= 0.0 && fps.is_finite() => args.fps = fps,
                    _ => return Err(bad("must be a number >= 0")),
                },
                "--size" => match value.parse::<usize>() {
                    Ok(size) if SIZES.contains(&size) => args.size = Some(size),
                    _ => return Err(bad(&format!("must be {}..={}", SIZES.start(), SIZES.end()))),
                },
                _ => return Err(format!("unknown argument {flag:?}")),
            }
        }
        Ok(args)
    }
}

/// Runs `stty` on the terminal on stdin; its output, or `None` if it failed.
fn stty(args: &[&str]) -> Option<String> {
    let out = Command::new("stty")
        .args(args)
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The terminal while the cube spins in place: the alternate screen, a hidden cursor, keys
/// unechoed and Ctrl-C as a key. Dropping it restores all of that.
struct Terminal {
    /// The `stty` settings to restore.
    saved: String,
}

impl Terminal {
    /// Takes the terminal over, or `None` when stdin and stdout are not both terminals or
    /// `stty` is missing.
    fn enter() -> Option<Terminal> {
        if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
            return None;
        }
        let saved = stty(&["-g"])?;
        stty(&["-icanon", "-echo", "-isig", "min", "1"])?;
        print!("{ENTER}");
        Some(Terminal { saved })
    }

    /// The largest frame width (at most 60) that fits the terminal; 60 when its size is unknown.
    fn fitting_size(&self) -> usize {
        let dims = stty(&["size"]).unwrap_or_default();
        let dims: Vec<usize> = dims
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        match dims[..] {
            [lines, cols] if lines > 0 && cols > 0 => cols.min(2 * lines).clamp(*SIZES.start(), 60),
            _ => 60,
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let mut out = std::io::stdout();
        let _ = write!(out, "{LEAVE}").and_then(|()| out.flush());
        stty(&[self.saved.as_str()]);
    }
}

/// A flag that a thread sets when Ctrl-C or `q` is typed (the terminal sends them as bytes).
fn stop_on_keys() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        for byte in std::io::stdin().lock().bytes() {
            if matches!(byte, Ok(3 | b'q') | Err(_)) {
                flag.store(true, Ordering::Relaxed);
                return;
            }
        }
    });
    stop
}

/// Draws the frames (in place when `terminal`, else one after another) until `frames` are
/// drawn (0: no limit), `stop` is set or stdout closes; returns the frames drawn, the time spent
/// rendering them and the time the whole loop took.
fn animate(
    args: &Args,
    size: usize,
    terminal: bool,
    stop: &AtomicBool,
) -> (u64, Duration, Duration) {
    let surface = surface(size);
    let mut out = std::io::stdout().lock();
    let (mut drawn, mut rendering, start) = (0u64, Duration::ZERO, Instant::now());
    while (args.frames == 0 || drawn < args.frames) && !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let frame = render(angles_at(drawn), size, &surface);
        rendering += t.elapsed();
        let shown = match (terminal, drawn) {
            (true, _) => write!(out, "{HOME}{frame}"),
            (false, 0) => writeln!(out, "{frame}"),
            (false, _) => writeln!(out, "\n{frame}"),
        };
        if shown.and_then(|()| out.flush()).is_err() {
            break; // e.g. `| head` closed the pipe
        }
        drawn += 1;
        if args.fps > 0.0 {
            let due = Duration::from_secs_f64(drawn as f64 / args.fps);
            std::thread::sleep(due.saturating_sub(start.elapsed()));
        }
    }
    (drawn, rendering, start.elapsed())
}

/// Parses the flags, takes the terminal over when it can, spins the cube and reports the rate.
fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match Args::parse(argv.into_iter()) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("cube: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let terminal = Terminal::enter();
    let size = args
        .size
        .unwrap_or_else(|| terminal.as_ref().map_or(60, Terminal::fitting_size));
    let stop = if terminal.is_some() {
        stop_on_keys()
    } else {
        Arc::default()
    };
    let (drawn, rendering, total) = animate(&args, size, terminal.is_some(), &stop);
    drop(terminal);
    if drawn > 0 {
        eprintln!(
            "frames drawn: {drawn} ({size}x{} on cpu); render {:.2} ms/frame ({:.0} fps), shown at {:.1} fps",
            size / 2,
            1e3 * rendering.as_secs_f64() / drawn as f64,
            drawn as f64 / rendering.as_secs_f64(),
            drawn as f64 / total.as_secs_f64(),
        );
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn a_frame_is_size_by_half_size_with_several_shades() {
        let frame = render(angles_at(0), 60, &surface(60));
        let lines: Vec<&str> = frame.lines().collect();
        assert_eq!(lines.len(), 30);
        assert!(lines.iter().all(|l| l.len() == 60));
        let mut shades: Vec<char> = frame.chars().filter(|c| !c.is_whitespace()).collect();
        shades.sort_unstable();
        shades.dedup();
        assert!(shades.len() >= 3, "{frame}");
    }

    #[test]
    fn the_rotation_is_orthonormal() {
        let r = rotation([0.3, -1.1, 2.0]);
        let eye = r.t().dot(&r) - Array2::<f64>::eye(3);
        assert!(eye.iter().all(|e| e.abs() < 1e-15), "{eye}");
    }

    #[test]
    fn arguments_parse_and_bad_ones_say_why() {
        let args = parse(&["--frames", "0", "--fps", "0", "--size", "12"]).unwrap();
        assert_eq!(
            args,
            Args {
                frames: 0,
                fps: 0.0,
                size: Some(12)
            }
        );
        assert!(parse(&["--size", "0"])
            .unwrap_err()
            .contains("must be 4..=400"));
        assert!(parse(&["--fps", "-1"]).unwrap_err().contains(">= 0"));
        assert!(parse(&["--fps", "nan"]).is_err());
        assert!(parse(&["--frames"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--color", "red"]).unwrap_err().contains("unknown"));
    }
}
