//! Running a prepared graph: each step reads its inputs, applies its operator, and stores the
//! result under the step's output id.

use std::collections::HashMap;

use candle_core::Tensor;

use super::kernels::{AddAct, Im2Col, Product};
use super::{Graph, GraphError, Op, Step};

/// A value during execution: a feature map in NCHW, or a plain tensor in the model's own layout.
#[derive(Debug, Clone)]
enum Value {
    Nchw(Tensor),
    Plain(Tensor),
}

impl Value {
    fn nchw(&self) -> candle_core::Result<&Tensor> {
        match self {
            Self::Nchw(t) => Ok(t),
            Self::Plain(_) => candle_core::bail!("expected a feature map"),
        }
    }

    /// The value in the model's layout (NHWC for feature maps).
    fn plain(&self) -> candle_core::Result<Tensor> {
        match self {
            Self::Nchw(t) => t.permute((0, 2, 3, 1))?.contiguous(),
            Self::Plain(t) => Ok(t.clone()),
        }
    }
}

impl Graph {
    /// Runs the model on an NCHW input and returns its outputs in the model's own layout, in the
    /// graph's output order.
    pub fn run(&self, input: &Tensor) -> Result<Vec<Tensor>, GraphError> {
        let mut values: HashMap<usize, Value> = HashMap::with_capacity(self.steps.len() + 1);
        values.insert(self.input, Value::Nchw(input.clone()));
        for step in &self.steps {
            let inputs = step
                .inputs
                .iter()
                .map(|id| match (values.get(id), self.constants.get(id)) {
                    (Some(v), _) => Ok(v.clone()),
                    (None, Some(c)) => Ok(Value::Plain(c.clone())),
                    (None, None) => candle_core::bail!("tensor {id} used before it is computed"),
                })
                .collect::<candle_core::Result<Vec<Value>>>()?;
            let output = step.eval(&inputs)?;
            for id in &step.frees {
                values.remove(id);
            }
            values.insert(step.output, output);
        }
        self.outputs
            .iter()
            .map(|o| {
                let v = values
                    .get(o)
                    .ok_or_else(|| candle_core::Error::Msg(format!("output {o} not computed")))?;
                Ok(v.plain()?)
            })
            .collect()
    }
}

impl Step {
    fn eval(&self, inputs: &[Value]) -> candle_core::Result<Value> {
        let first = || {
            inputs
                .first()
                .ok_or_else(|| candle_core::Error::Msg("an operator without input".into()))
        };
        Ok(match &self.op {
            Op::Conv {
                product,
                im2col,
                residual,
            } => {
                let residual = match (residual, inputs.get(1)) {
                    (false, _) => None,
                    (true, Some(r)) => Some(r.nchw()?),
                    (true, None) => candle_core::bail!("a residual convolution without residual"),
                };
                Value::Nchw(conv(first()?.nchw()?, product, im2col.as_ref(), residual)?)
            }
            Op::Depthwise(d) => Value::Nchw(first()?.nchw()?.contiguous()?.apply_op1_no_bwd(d)?),
            Op::MaxPool(pool) => {
                Value::Nchw(first()?.nchw()?.contiguous()?.apply_op1_no_bwd(pool)?)
            }
            Op::Pad { paddings } => {
                // NHWC paddings applied to NCHW dims.
                let mut x = first()?.nchw()?.clone();
                for (nhwc_dim, nchw_dim) in [(1, 2), (2, 3), (3, 1)] {
                    let p = &paddings[nhwc_dim];
                    if p[0] + p[1] > 0 {
                        x = x.pad_with_zeros(nchw_dim, p[0], p[1])?;
                    }
                }
                Value::Nchw(x)
            }
            Op::Add {
                activation,
                overwrite_first,
            } => match inputs {
                [Value::Nchw(a), Value::Nchw(b)] => {
                    let add = AddAct {
                        activation: activation.clone(),
                    };
                    if *overwrite_first && a.dims() == b.dims() && a.is_contiguous() {
                        a.inplace_op2(&b.contiguous()?, &add)?;
                        Value::Nchw(a.clone())
                    } else {
                        let shape = a.shape().broadcast_shape_binary_op(b.shape(), "ADD")?;
                        // A copy of its own to write the sum into.
                        let sum = a.broadcast_as(&shape)?.copy()?.contiguous()?;
                        sum.inplace_op2(&b.broadcast_as(&shape)?.contiguous()?, &add)?;
                        Value::Nchw(sum)
                    }
                }
                [a, b] => Value::Plain(activation.apply(a.plain()?.broadcast_add(&b.plain()?)?)?),
                _ => candle_core::bail!("ADD takes two inputs, got {}", inputs.len()),
            },
            Op::Relu => match first()? {
                Value::Nchw(t) => Value::Nchw(t.relu()?),
                Value::Plain(t) => Value::Plain(t.relu()?),
            },
            Op::PRelu(p) => Value::Nchw(first()?.nchw()?.contiguous()?.apply_op1_no_bwd(p)?),
            Op::Reshape { shape } => {
                let x = first()?.plain()?;
                // The model's shapes are for one image; a batch keeps its own first dimension.
                let mut shape = shape.clone();
                if let (Some(first @ 1), Some(batch)) = (shape.first_mut(), x.dims().first()) {
                    *first = *batch;
                }
                Value::Plain(x.reshape(shape.as_slice())?)
            }
            Op::Concat { axis } => concat(inputs, *axis)?,
            Op::Mean => Value::Plain(first()?.nchw()?.mean((2, 3))?),
            Op::Softmax => Value::Plain(candle_nn::ops::softmax_last_dim(&first()?.plain()?)?),
        })
    }
}

/// A convolution as one matrix product per image: im2col (unless it is 1x1), then the product
/// from the bias (and the residual, when there is one), with the activation.
fn conv(
    x: &Tensor,
    product: &Product,
    im2col: Option<&Im2Col>,
    residual: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let x = x.contiguous()?;
    let (n, c, h, w) = x.dims4()?;
    let (cols, oh, ow) = match im2col {
        None => (x.reshape((n, c, h * w))?, h, w),
        Some(op) => {
            let (oh, ..) = op.padding.along(h, op.kernel.0, op.stride);
            let (ow, ..) = op.padding.along(w, op.kernel.1, op.stride);
            (x.apply_op1_no_bwd(op)?, oh, ow)
        }
    };
    let out = match residual {
        None => cols.apply_op1_no_bwd(product)?,
        // The product refuses a residual of another shape than its output.
        Some(r) => cols.apply_op2_no_bwd(&r.contiguous()?.flatten_from(2)?, product)?,
    };
    out.reshape((n, product.rows(), oh, ow))
}

/// Feature maps joined on channels stay NCHW; anything else is joined in the model's layout.
fn concat(parts: &[Value], axis: i64) -> candle_core::Result<Value> {
    if axis == 3 && parts.iter().all(|p| matches!(p, Value::Nchw(_))) {
        let ts: Vec<&Tensor> = parts
            .iter()
            .map(|p| p.nchw())
            .collect::<candle_core::Result<_>>()?;
        return Ok(Value::Nchw(Tensor::cat(&ts, 1)?));
    }
    let ts: Vec<Tensor> = parts
        .iter()
        .map(|p| p.plain())
        .collect::<candle_core::Result<_>>()?;
    let rank = ts
        .first()
        .ok_or_else(|| candle_core::Error::Msg("CONCATENATION of nothing".into()))?
        .rank() as i64;
    let axis = if axis < 0 { rank + axis } else { axis } as usize;
    Ok(Value::Plain(Tensor::cat(&ts, axis)?))
}
