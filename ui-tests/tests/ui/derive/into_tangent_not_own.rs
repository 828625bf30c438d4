use fluxion::autodiff::Differentiable;

#[derive(Differentiable, Clone)]
struct Point { x: f64, y: f64 }

#[derive(Differentiable, Clone)]
struct Segment { start: Point, length: f64 }

fn main() {
    let s = Segment { start: Point { x: 0.0, y: 1.0 }, length: 2.0 };
    let _t: SegmentTangent = s.into(); // `start` is a struct, not its own tangent
}
