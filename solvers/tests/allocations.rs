//! No Krylov iteration allocates: with a counting global allocator, a solve capped at more
//! iterations makes exactly as many allocations as one capped at fewer, once the first cycle has
//! sized the workspaces. (Only this test runs in this binary, so the count is the solve's own.)

use pdekit_solvers::krylov::block::Orthogonalization;
use pdekit_solvers::krylov::{
    bicgstab, cg, fgmres_in, gmres_in, GcroDr, GcroDrParams, GmresParams, GmresWorkspace,
    RecycleUpdate, RecycledCg, RecycledCgParams,
};
use pdekit_solvers::linalg::{CsrOperator, Jacobi};
use pdekit_solvers::SolveParams;
use sprs::{CsMat, TriMat};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A non-symmetric convection–diffusion matrix on an m×m grid (SPD when `conv` = 0).
fn matrix(m: usize, conv: f64) -> CsMat<f64> {
    let n = m * m;
    let mut t = TriMat::new((n, n));
    for p in 0..m {
        for q in 0..m {
            let i = p * m + q;
            t.add_triplet(i, i, 4.0);
            if q > 0 {
                t.add_triplet(i, i - 1, -1.0 - conv);
            }
            if q + 1 < m {
                t.add_triplet(i, i + 1, -1.0 + conv);
            }
            if p > 0 {
                t.add_triplet(i, i - m, -1.0);
            }
            if p + 1 < m {
                t.add_triplet(i, i + m, -1.0);
            }
        }
    }
    t.to_csr()
}

/// Allocations made by `solve` capped at `iterations` (it never converges: rtol 1e-300).
fn allocations(iterations: usize, solve: &mut dyn FnMut(&SolveParams)) -> usize {
    let params = SolveParams::new(1e-300, iterations);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    solve(&params);
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn iterations_allocate_nothing_after_the_first_cycle() {
    let spd = matrix(30, 0.0);
    let nonsym = matrix(30, 0.3);
    let n = spd.rows();
    let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() + 0.2).collect();
    let (op_spd, op_ns) = (CsrOperator::serial(&spd), CsrOperator::serial(&nonsym));
    let (jac_spd, jac_ns) = (Jacobi::new(&spd).unwrap(), Jacobi::new(&nonsym).unwrap());

    let mut ws = GmresWorkspace::default();
    let mut gcrodr_cycle = GcroDr::new(GcroDrParams::new(30, 4)).unwrap();
    let mut gcrodr_system =
        GcroDr::new(GcroDrParams::new(10, 4).with_update(RecycleUpdate::PerSystem)).unwrap();
    let mut rcg = RecycledCg::new(RecycledCgParams::new(4));
    let mut x = vec![0.0; n];
    let mut solve_cg = |p: &SolveParams| {
        x.fill(0.0);
        let _ = cg(&op_spd, &jac_spd, &b, &mut x, p);
    };
    assert_eq!(
        allocations(30, &mut solve_cg),
        allocations(90, &mut solve_cg),
        "CG: allocations grow with iterations"
    );
    let mut solve_bicgstab = |p: &SolveParams| {
        x.fill(0.0);
        let _ = bicgstab(&op_ns, &jac_ns, &b, &mut x, p);
    };
    assert_eq!(
        allocations(30, &mut solve_bicgstab),
        allocations(90, &mut solve_bicgstab),
        "BiCGStab: allocations grow with iterations"
    );

    let mut x = vec![0.0; n];
    for ortho in [
        Orthogonalization::Mgs,
        Orthogonalization::Cgs,
        Orthogonalization::Cgs2,
    ] {
        let gp = GmresParams::new(10).with_orthogonalization(ortho);
        let mut run = |flexible: bool, p: &SolveParams| {
            x.fill(0.0);
            let _ = if flexible {
                fgmres_in(&mut ws, &op_ns, &jac_ns, &b, &mut x, p, &gp)
            } else {
                gmres_in(&mut ws, &op_ns, &jac_ns, &b, &mut x, p, &gp)
            };
        };
        for flexible in [false, true] {
            allocations(57, &mut |p| run(flexible, p));
            let first = allocations(13, &mut |p| run(flexible, p));
            let later = allocations(57, &mut |p| run(flexible, p));
            assert_eq!(
                first,
                later,
                "{} {ortho:?}: allocations grow with iterations",
                if flexible { "FGMRES" } else { "GMRES" }
            );
        }
    }

    // GCRO-DR(30, 4) updating per cycle: the first cycle has 30 iterations, then 26 per cycle.
    // Caps 35 and 55 both stop in the second cycle and differ by 20 iterations. The per-cycle
    // update solves a small dense eigenproblem (it allocates); a complex pair of harmonic Ritz
    // values adds one column to it, which may add two allocations, never twenty.
    let mut solve_cycle = |p: &SolveParams| {
        gcrodr_cycle.reset();
        x.fill(0.0);
        let _ = gcrodr_cycle.solve(&op_ns, &jac_ns, &b, &mut x, p);
    };
    allocations(40, &mut solve_cycle);
    let (first, later) = (
        allocations(35, &mut solve_cycle),
        allocations(55, &mut solve_cycle),
    );
    assert!(
        first.abs_diff(later) <= 2,
        "GCRO-DR: {first} allocations at 35 iterations, {later} at 55"
    );
    // GCRO-DR(10, 4) updating per system: caps 18 and 60 differ by seven cycles, and nothing in
    // a cycle allocates.
    let mut solve_system = |p: &SolveParams| {
        gcrodr_system.reset();
        x.fill(0.0);
        let _ = gcrodr_system.solve(&op_ns, &jac_ns, &b, &mut x, p);
    };
    allocations(40, &mut solve_system);
    assert_eq!(
        allocations(18, &mut solve_system),
        allocations(60, &mut solve_system),
        "GCRO-DR (per-system update): allocations grow with iterations or cycles"
    );
    // Recycled CG keeps its first `stored_directions` search directions (its "first cycle"), then
    // iterates without allocating.
    let stored = RecycledCgParams::new(4).stored_directions;
    let mut solve_rcg = |p: &SolveParams| {
        rcg.reset();
        x.fill(0.0);
        let _ = rcg.solve(&op_spd, &jac_spd, &b, &mut x, p);
    };
    assert_eq!(
        allocations(stored + 5, &mut solve_rcg),
        allocations(stored + 60, &mut solve_rcg),
        "recycled CG: allocations grow with iterations"
    );
}
