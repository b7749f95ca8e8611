//! Structured meshes of boxes (rectangles in 2-D, bricks in 3-D) on an axis-aligned box.
//!
//! Nodes are numbered row-major with the last axis fastest; element `e` has its lower corner at
//! node multi-index `cell(e)`. Everything is generic over the dimension `D` (2 or 3).

/// `cells[k]` equal cells along axis k of the box `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxMesh<const D: usize> {
    pub lo: [f64; D],
    pub hi: [f64; D],
    pub cells: [usize; D],
}

impl<const D: usize> BoxMesh<D> {
    pub fn new(lo: [f64; D], hi: [f64; D], cells: [usize; D]) -> Self {
        Self { lo, hi, cells }
    }

    /// Cell sizes per axis.
    pub fn h(&self) -> [f64; D] {
        std::array::from_fn(|k| (self.hi[k] - self.lo[k]) / self.cells[k] as f64)
    }

    /// Nodes per axis.
    pub fn node_dims(&self) -> [usize; D] {
        std::array::from_fn(|k| self.cells[k] + 1)
    }

    pub fn nodes(&self) -> usize {
        self.node_dims().iter().product()
    }

    pub fn elements(&self) -> usize {
        self.cells.iter().product()
    }

    /// Flat index of the node with multi-index `m`.
    pub fn node_index(&self, m: [usize; D]) -> usize {
        let dims = self.node_dims();
        m.iter().zip(&dims).fold(0, |acc, (&i, &n)| acc * n + i)
    }

    /// Multi-index of node `i`.
    pub fn node_multi(&self, mut i: usize) -> [usize; D] {
        let dims = self.node_dims();
        let mut m = [0; D];
        for k in (0..D).rev() {
            m[k] = i % dims[k];
            i /= dims[k];
        }
        m
    }

    pub fn node_coord(&self, m: [usize; D]) -> [f64; D] {
        let h = self.h();
        std::array::from_fn(|k| self.lo[k] + m[k] as f64 * h[k])
    }

    /// Multi-index of element `e`'s lower corner.
    pub fn cell(&self, mut e: usize) -> [usize; D] {
        let mut m = [0; D];
        for k in (0..D).rev() {
            m[k] = e % self.cells[k];
            e /= self.cells[k];
        }
        m
    }

    /// The `2^D` nodes of element `e`, corner `c` having offset bit k along axis k.
    /// The element whose lowest node is `m` (the inverse of [`Self::cell`]).
    pub fn cell_index(&self, m: [usize; D]) -> usize {
        m.iter()
            .zip(&self.cells)
            .fold(0, |acc, (&i, &n)| acc * n + i)
    }

    pub fn element_nodes(&self, e: usize) -> Vec<usize> {
        let base = self.cell(e);
        (0..1usize << D)
            .map(|c| {
                let m: [usize; D] = std::array::from_fn(|k| base[k] + ((c >> k) & 1));
                self.node_index(m)
            })
            .collect()
    }

    /// Whether the node is on the boundary of the box.
    pub fn on_boundary(&self, m: [usize; D]) -> bool {
        (0..D).any(|k| m[k] == 0 || m[k] == self.cells[k])
    }

    /// The element containing `x` (clamped to the box) and the local coordinates in [0, 1]^D.
    pub fn locate(&self, x: [f64; D]) -> (usize, [f64; D]) {
        let h = self.h();
        let mut cell = [0; D];
        let mut local = [0.0; D];
        for k in 0..D {
            let t = ((x[k] - self.lo[k]) / h[k]).clamp(0.0, self.cells[k] as f64);
            let c = (t.floor() as usize).min(self.cells[k] - 1);
            cell[k] = c;
            local[k] = t - c as f64;
        }
        let e = cell
            .iter()
            .zip(&self.cells)
            .fold(0, |acc, (&i, &n)| acc * n + i);
        (e, local)
    }

    /// Whether the point lies in the closed box.
    pub fn contains(&self, x: [f64; D]) -> bool {
        (0..D).all(|k| x[k] >= self.lo[k] - 1e-12 && x[k] <= self.hi[k] + 1e-12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_round_trips_and_elements_have_their_corners() {
        let m = BoxMesh::new([0.0, 1.0, -1.0], [2.0, 2.0, 1.0], [4, 3, 2]);
        assert_eq!(m.nodes(), 5 * 4 * 3);
        for i in 0..m.nodes() {
            assert_eq!(m.node_index(m.node_multi(i)), i);
        }
        let nodes = m.element_nodes(m.elements() - 1);
        assert_eq!(m.node_multi(nodes[0]), [3, 2, 1]);
        assert_eq!(m.node_multi(nodes[7]), [4, 3, 2]);
        let (e, local) = m.locate([1.25, 1.5, 0.5]);
        assert_eq!(m.cell(e), [2, 1, 1]);
        assert!((local[0] - 0.5).abs() < 1e-12 && (local[2] - 0.5).abs() < 1e-12);
    }
}
