"""Hints for the exercises, in two levels: the idea first, then the formula.

``python tools/hint.py 2.1`` prints the first hint of exercise 2.1, ``--level 2`` the second.
Every exercise region in the library (``# --- exercise N.M: title ---``) needs an entry here;
``tests/test_exercises.py`` checks it. An entry is a dict with:

* ``"idea"``: what to think about, without the answer (which quantity, which rule, which shape);
* ``"formula"``: the rule itself, in maths or pseudo-code, short of the finished code;
* ``"spoilers"`` (optional): the first words of docstring paragraphs, in the function or class
  that holds the region, that give the answer away. ``tools/make_exercises.py`` leaves those
  paragraphs out of the learner's copy while the exercise is a stub (with the indented block
  after a paragraph ending in ``::``).

Plain Python (no TOML) so that it reads on Python 3.10.
"""

HINTS: dict[str, dict] = {
    "2.1": {
        "idea": (
            "Recording is bookkeeping, nothing is computed: the op must remember which tensors "
            "went in (all of them, numbers and options included, in order) and which of them "
            "need a gradient, and the new output must remember the op that made it and that it "
            "requires grad. The backward pass reads exactly these. A fresh op has freed = False."
        ),
        "formula": (
            "self.inputs = inputs; self.needs_input_grad = needs; self.freed = False;\n"
            "return a Tensor of out_data with requires_grad True and ctx self "
            "(Tensor._make(data, requires_grad, ctx))."
        ),
    },
    "2.2": {
        "idea": (
            "Each input t of the op just visited receives a share g of the gradient. t may be "
            "used by several ops, so its shares add up; and its own backward may run only once "
            "all of them have arrived. consumers[id(t)] counts the ops still to pass a share to "
            "t; when it reaches zero, t is ready. An op that passes None still counts as done."
        ),
        "formula": (
            "key = id(t); if g is not None: grads[key] = g, or grads[key] + g if a share is "
            "already there;\nconsumers[key] -= 1; if it is now 0: ready.append(t)."
        ),
    },
    "2.3": {
        "idea": (
            "Broadcasting does two things to an input's shape: it adds leading axes, and it "
            "stretches axes of size 1. An element used n times gets the sum of its n gradients, "
            "so sum the gradient over every added axis and over every stretched axis, then give "
            "it the input's shape."
        ),
        "formula": (
            "lead = grad.ndim - len(shape); axes = 0 .. lead-1, plus lead + i for every i "
            "with shape[i] == 1 and grad.shape[lead + i] != 1;\n"
            "grad = grad.sum(axis=axes, keepdims=True) if axes; return grad.reshape(shape)."
        ),
    },
    "2.4": {
        "idea": (
            "Differentiate one input at a time, the other held fixed. For a * b each element "
            "only sees its partner; for a matrix product, write one element of a @ b as a sum "
            "and see which entries of grad_out and of the other matrix multiply each a[i, k]. "
            "The result must have its input's shape: either input may have been broadcast "
            "(a batch dimension, a row of size 1), and an input that needs no gradient gets None."
        ),
        "formula": (
            "mul: grad_a = unbroadcast(grad_out * b, a's shape), grad_b likewise with a;\n"
            "matmul: grad_a = unbroadcast(grad_out @ b^T, a.shape), "
            "grad_b = unbroadcast(a^T @ grad_out, b.shape) (^T: swap the last two axes, .mT)."
        ),
        "spoilers": ["Backward: ``grad_a = grad_out @ b^T``"],
    },
    "2.5": {
        "idea": (
            "These ops move or copy values without changing them, so the gradient is moved back "
            "the same way. Sum: each input element contributed once to one output element; "
            "reshape: the elements keep their order; transpose: put the axes back where they "
            "were. Sum, Reshape and Transpose get extra options as inputs (axes, shape): "
            "their gradient is None."
        ),
        "formula": (
            "sum: grad_out reshaped with size-1 axes where the summed axes were "
            "(_keepdims_shape), then broadcast_to the input shape; reshape: "
            "grad_out.reshape(in_shape); transpose: grad_out.transpose(inverse permutation), "
            "inverse[axes[i]] = i. Return (grad, None, ...) one per input."
        ),
    },
    "2.6": {
        "idea": (
            "The output is a copy of one of the two inputs at each position, so the upstream "
            "gradient goes to the input that was selected there, and nothing to the other. Two "
            "more things: where a == b, split it half and half (that is what the tests expect); "
            "and a or b may have been broadcast (or be a Python number), so each gradient must "
            "be summed back to its input's shape."
        ),
        "formula": (
            "w_a = [a > b] + 0.5 [a == b] for maximum ([a < b] + 0.5 [a == b] for minimum);\n"
            "grad_a = unbroadcast(grad_out * w_a, shape of a)\n"
            "grad_b = unbroadcast(grad_out * (1 - w_a), shape of b)\n"
            "Return None for an input that does not need a gradient (fn.needs_input_grad)."
        ),
    },
    "2.7": {
        "idea": (
            "|a| is a for a > 0 and -a for a < 0: its derivative is +1 or -1, whichever sign a "
            "has. At a = 0 the function has a kink; pick 0 there, as PyTorch does."
        ),
        "formula": (
            "grad_a = grad_out * sign(a), with sign taken on the input's array: "
            "a = self.inputs[0].data; backend.xp_of(a).sign(a) (sign(0) = 0; a Tensor has no "
            ".sign())"
        ),
    },
    "3.1": {
        "idea": (
            "A module's parameters are its own (in _parameters, by name) and those of its "
            "sub-modules, found by walking the tree (named_modules gives every module with its "
            "dotted prefix). A tied parameter sits in two modules: yield it once, under the "
            "first name met. A slot may hold None (a Linear without bias)."
        ),
        "formula": (
            "seen = set(); for mod_name, m in self.named_modules(prefix): for name, p in "
            "m._parameters.items(): skip None and ids already seen; remember id(p); yield "
            "('mod_name.name' or just name at the top, p)."
        ),
    },
    "3.2": {
        "idea": (
            "Forward: a dense layer multiplies the last axis by the weight and adds the bias; "
            "PyTorch stores the weight as (out, in), so the product uses its transpose. "
            "Backward: differentiate y = x W^T + b for each of the three inputs, as chapter 2 "
            "did for a matmul and an add: check each result's shape against its input's "
            "((N, in), (out, in), (out,)); the bias was used by every row of the batch."
        ),
        "formula": (
            "forward (arrays, x already (N, in)): y = matmul(x, weight.mT), plus bias unless "
            "it is None;\n"
            "backward (g = grad_out and x flattened to (N, out) and (N, in), w the weight): "
            "grad_x = g @ w, grad_W = g^T @ x, grad_b = total(g) (summed over axis 0); only "
            "where needs_input_grad says so."
        ),
        "spoilers": ["Backward: ``grad_x = grad_out W`` (N, in)"],
    },
    "3.3": {
        "idea": (
            "max(a, 0) keeps a where it is positive and 0 elsewhere. Write it without an if on "
            "values (an array has no single truth value) and even without where: an "
            "elementwise function of a and 0 does it. The derivative is 1 where the output is "
            "positive and 0 elsewhere (0 at a = 0, as PyTorch): keep the output on self and "
            "turn that condition into a 0/1 array of the output's dtype."
        ),
        "formula": (
            "forward: self.out = maximum(a, zero of a's dtype); return self.out;\n"
            "backward: grad_out * constant(astype(self.out > 0, self.out.dtype))."
        ),
        "spoilers": ["Both directions are branch-free"],
    },
    "3.4": {
        "idea": (
            "He (Kaiming) initialisation keeps the variance of the activations the same from "
            "layer to layer: each output sums `fan` inputs, so the weights' variance must be "
            "about 1 / fan, times a gain for what the nonlinearity removes (ReLU halves it). "
            "init.py already computes the fan and the gain for the uniform variant."
        ),
        "formula": (
            "std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a) "
            "(sqrt(2) for ReLU, sqrt(2 / (1 + a^2)) for leaky ReLU), fan = fan_in or fan_out "
            "(mode); fill the tensor from N(0, std^2) in place and return it "
            "(look at _kaiming_std and normal_)."
        ),
    },
    "3.5": {
        "idea": (
            "Glorot (Xavier) initialisation balances the forward pass (variance ~ 1 / fan_in) "
            "and the backward pass (variance ~ 1 / fan_out) by averaging the two fans."
        ),
        "formula": (
            "std = gain * sqrt(2 / (fan_in + fan_out)), fans from "
            "_calculate_fan_in_and_fan_out; fill in place with normal_(tensor, 0, std)."
        ),
    },
    "4.1": {
        "idea": (
            "log softmax(x) = x - log sum exp(x). exp overflows for x around 89 in float32: "
            "subtracting the row maximum first changes nothing in the result (it cancels) but "
            "keeps every exp at or below 1, and the largest term at exactly 1, so the log is "
            "never of 0. Work along the given axis, keepdims so that it broadcasts back."
        ),
        "formula": (
            "z = x - max(x, axis, keepdims); lse = log(sum(exp(z), axis, keepdims));\n"
            "self.out = z - lse; return self.out."
        ),
    },
    "4.2": {
        "idea": (
            "For one row the loss is lse(x) - x[t], and the derivative of lse is the softmax. "
            "So the gradient is the predicted distribution minus the target distribution q "
            "(the one-hot of t; with label smoothing, (1 - eps) one-hot + eps / C), times the "
            "row's weight w, which is already computed. No 1/p appears: it is stable."
        ),
        "formula": (
            "p = softmax(x, 1) (or self.e / self.s as a constant under no_grad); q = one-hot of "
            "self.t in the logits' dtype, smoothed if self.eps > 0;\n"
            "return (p - q) * w, then None for the four other inputs."
        ),
        "spoilers": ["Backward: ``grad_x = (softmax(x) - q) * w``"],
    },
    "4.3": {
        "idea": (
            "Momentum keeps a running, decaying sum of past gradients per parameter (the "
            "`momentum_buffer` in the optimizer's state) and steps along it instead of along "
            "the last gradient. On the very first step there is no past: the buffer starts as "
            "the gradient itself. Nesterov looks one step ahead along the buffer."
        ),
        "formula": (
            "first step: b = copy of g; later: b = momentum * b + (1 - dampening) * g;\n"
            "direction = g + momentum * b if nesterov else b\n"
            "(assign it to grad: the line after the region does p.data -= lr * grad). Update b "
            "in place: it is the optimizer's own array, and g may be shared (copy it on the "
            "first step)."
        ),
    },
    "4.4": {
        "idea": (
            "Adam keeps two running averages per parameter: m of the gradient and v of its "
            "square (state['exp_avg'], state['exp_avg_sq'], zeros at first, update them in "
            "place). Both start at zero, so early on they are too small by a factor "
            "1 - beta^t: divide that out. Step along m / sqrt(v): each weight moves by about lr, "
            "whatever its gradient's scale. amsgrad uses the running maximum of v instead."
        ),
        "formula": (
            "m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2 (in place);\n"
            "if amsgrad: v_max = max(v_max, v) in place, use it for v;\n"
            "p.data = p.data - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)."
        ),
        "spoilers": ["For each parameter ``p`` with gradient ``g``, at step t = 1"],
    },
    "4.5": {
        "idea": (
            "Gradients accumulate into .grad (that is what lets a tensor used twice get both "
            "shares), so old ones must be cleared before the new backward; then the backward "
            "fills every parameter's .grad; then the optimizer moves the parameters."
        ),
        "formula": (
            "three calls, in this order: the optimizer clears every parameter's gradient, the "
            "loss runs the backward pass, the optimizer updates the parameters."
        ),
    },
    "5.1": {
        "idea": (
            "Compare every id with every class number at once: broadcasting ids of shape "
            "(..., 1) against arange(num_classes) gives a (..., num_classes) boolean array "
            "that is True exactly where the class is the id."
        ),
        "formula": (
            "out = (ids[..., None] == arange(num_classes)) as int64, wrapped as a constant "
            "Tensor (one-hot has no gradient)."
        ),
    },
    "5.2": {
        "idea": (
            "The tokenizer keeps `itos`, the character of each id. Decoding is a lookup per id "
            "and a join. Accept a list, a NumPy array or a Tensor: turn the input into a flat "
            "sequence of Python ints first."
        ),
        "formula": (
            "text = the characters itos[int(id)] of every id of the flattened input, joined "
            'with "" (a Tensor: take .numpy() first; an empty input gives "").'
        ),
    },
    "5.3": {
        "idea": (
            "Forward copies row ids[m] of the table to output row m. So row v of the table's "
            "gradient is the sum of the output gradients of every m that looked v up: an id "
            "that appears three times gets three rows added, one never looked up gets zeros. "
            "A plain fancy-index assignment keeps only one of the repeated rows: that is the "
            "trap. Two ways: a (V, M) one-hot matrix times grad_out, or a scatter-add."
        ),
        "formula": (
            "one-hot route (self.onehot): onehot_t[v, m] = (v == ids[m]) as grad_out's dtype, "
            "return (constant onehot_t) @ grad_out, None;\nelse: "
            "ops.IndexAdd.apply(grad_out, (V, D), (self.ids, Ellipsis)), None "
            "(adds every row of grad_out into row ids[m] of zeros (V, D))."
        ),
        "spoilers": ["Backward: ``grad_weight[v] = sum of grad_out[m]"],
    },
    "6.1": {
        "idea": (
            "Output position i of a convolution reads the padded input at i*stride, "
            "i*stride + dilation, ..., i*stride + (K-1)*dilation, in every channel. Unfold copies "
            "those C*K values into column i, so that the convolution becomes one matrix product. "
            "Do not loop over positions: loop over the K kernel taps. Tap k of all the windows "
            "is one strided slice of the padded input."
        ),
        "formula": (
            "cols = empty (N, C, K, L_out); span = stride*(L_out-1) + 1;\n"
            "for k in range(K): cols[:, :, k, :] = xpad[:, :, k*dilation : k*dilation + span : "
            "stride];\nreturn cols reshaped to (N, C*K, L_out): "
            "cols[n, c*K + k, i] = xpad[n, c, i*stride + k*dilation]"
        ),
        "spoilers": ["Built one kernel tap at a time"],
    },
    "6.2": {
        "idea": (
            "Unfold copies input positions into windows, so a position that lies in several "
            "windows is read several times; its gradient is the sum over those windows. Loop "
            "over the K kernel taps, not over positions: tap k of all windows reads a strided "
            "slice of the padded input, so fold adds tap k of all windows back onto that slice."
        ),
        "formula": (
            "cols (N, C*K, L_out) -> (N, C, K, L_out); out = zeros (N, C, L + 2 padding);\n"
            "for k in range(K): out[:, :, k*dilation : k*dilation + stride*(L_out-1) + 1 : "
            "stride] += cols[:, :, k, :];\n"
            "return out without the padding: out[:, :, padding : padding + L]."
        ),
    },
    "7.1": {
        "idea": (
            "The cell mixes the new input and the previous hidden state with two matrices, adds "
            "the biases, and squashes the sum with the nonlinearity. PyTorch stores weights as "
            "(out, in), so a batch of row vectors is multiplied by the transposed weight."
        ),
        "formula": (
            "a = x @ W_ih^T + h @ W_hh^T (+ b_ih + b_hh when the cell has biases);\n"
            "h' = tanh(a) for nonlinearity 'tanh', relu(a) for 'relu' (Tensor methods)."
        ),
    },
    "7.2": {
        "idea": (
            "Go backwards in time. The gradient reaching h_t comes from two places: the loss at "
            "step t (grad_out[t]) and step t+1 (through W_hh). Multiply by the derivative of "
            "the nonlinearity, written with the saved output h_t, to get the gradient of the "
            "pre-activation; that is step t's contribution to grad_x_proj and, through W_hh, "
            "the gradient that flows on to h_{t-1}."
        ),
        "formula": (
            "dh = 0; for t = T-1 .. 0:\n"
            "  dh = dh + grad_out[t]\n"
            "  dz = dh * (1 - h_t^2) for tanh, dh * [h_t > 0] for relu\n"
            "  grad_x_proj[t] = dz\n"
            "  dh = dz @ W_hh"
        ),
        "spoilers": ["Backward, t = T..1"],
    },
    "7.3": {
        "idea": (
            "Treat all the gradients as one long vector and measure its length (the p-norm). "
            "If it is longer than max_norm, shrink every gradient by the same factor, so the "
            "direction of the step is kept and only its size is capped. A NaN or infinite norm "
            "must leave the gradients alone. Replace p.grad by a scaled copy: never write into "
            "a gradient array in place."
        ),
        "formula": (
            "total = (sum over parameters of sum |g|^p)^(1/p)  (max |g| for p = inf);\n"
            "coef = max_norm / (total + 1e-6); if total is finite and coef < 1: "
            "p.grad = Tensor._make(p.grad.data * coef, False, None) for every p with a grad;\n"
            "the function returns total (the norm before clipping)."
        ),
        "spoilers": ["The norm is taken over all gradients together"],
    },
    "8.1": {
        "idea": (
            "The pre-activations hold four blocks of H columns: input gate i, forget gate f, "
            "candidate g and output gate o. Squash i, f, o with a sigmoid and g with tanh "
            "(_gate_activations does all four with one tanh, which never overflows), then "
            "update the cell and read the hidden state out of it. Save the gate values and "
            "tanh(c') for backward."
        ),
        "formula": (
            "act = _gate_activations(xp, gates, _gate_scale(xp, H, gates.dtype)); "
            "i, f, g, o = _split4(act, H);\n"
            "c' = f * c + i * g;  h' = o * tanh(c');  self.saved = (act, tanh(c'));  "
            "return (h', c')"
        ),
    },
    "8.2": {
        "idea": (
            "c' = f*c + i*g and h' = o*tanh(c'). The cell state c' reaches the loss twice: "
            "directly (grad_c) and through h'. Add both, then apply the product rule to each "
            "term of c' and the derivative of each gate's activation, written with the gate "
            "values saved in the forward (sigmoid' = s(1 - s), tanh' = 1 - t^2). Return the "
            "gradients of the four gate pre-activations and of the previous cell state, in the "
            "order (i, f, g, o, c)."
        ),
        "formula": (
            "dc' = grad_c + grad_h * o * (1 - tanh_c^2)\n"
            "da_o = grad_h * tanh_c * o (1 - o)\n"
            "da_i = dc' * g * i (1 - i);  da_f = dc' * c_prev * f (1 - f);  "
            "da_g = dc' * i * (1 - g^2)\n"
            "dc = dc' * f"
        ),
        "spoilers": ["With ``c' = f*c + i*g``"],
    },
    "9.1": {
        "idea": (
            "Score every key for every query with a dot product, scaled so that the scores do "
            "not grow with the head size. A float mask is simply added to the scores (a large "
            "negative number lowers a weight towards zero). A blocked position must get exactly "
            "zero weight: give it a score that the softmax turns into exp(-inf) = 0. The "
            "softmax itself (chapter 4's, stable, and safe for a row with every key blocked) is "
            "applied by the caller."
        ),
        "formula": (
            "scores = (q @ k^T) * scale  (xp.matmul(q, k.mT));  if additive is not None: "
            "scores = scores + additive;\n"
            "if keep is not None: scores = xp.where(keep, scores, -inf);  return scores"
        ),
    },
    "9.2": {
        "idea": (
            "Attention is three steps: scores Z = q k^T * scale (+ the additive mask), weights "
            "P = softmax(Z) over the keys, out = P v. Go back through them one at a time: the "
            "gradient of P from out = P v (a matmul), then through the softmax row by row "
            "(the Jacobian of a softmax is diag(p) - p p^T), then through the matmul and the "
            "scale to q and k. The mask is added to Z, so its gradient is the gradient of Z, "
            "summed back to the mask's shape. Dropout multiplies P by a fixed mask D."
        ),
        "formula": (
            "dP = (grad_out @ v^T) * D;  dZ = P * (dP - sum_j(dP * P))  (sum over the last axis, "
            "keepdims);\n"
            "grad_mask = unbroadcast(dZ, mask shape);  dZ = dZ * scale;\n"
            "grad_q = unbroadcast(dZ @ k, q shape);  grad_k = unbroadcast(dZ^T @ q, k shape)"
        ),
        "spoilers": ["Backward, with ``D``"],
    },
    "9.3": {
        "idea": (
            "The E = H*D features of each position are H consecutive slices of D features, one "
            "per head. Cut the last axis into (H, D) with a reshape (no copy), then move the "
            "head axis in front of the time axis, so that attention runs over (B, H) batches."
        ),
        "formula": (
            "x (B, T, E) -> x.reshape(B, T, H, D) -> x.transpose(0, 2, 1, 3), shape (B, H, T, D)"
        ),
    },
    "10.1": {
        "idea": (
            "xhat = (x - mean) * rstd depends on x directly and through the mean and the "
            "variance, both taken over the normalised axes. Write the gradient of xhat (the "
            "upstream gradient times the weight), then remove from it its mean, and its "
            "component along xhat: those two terms are what the mean and the variance take."
        ),
        "formula": (
            "gh = grad_out * weight (or grad_out without a weight);\n"
            "grad_x = rstd * (gh - mean(gh) - xhat * mean(gh * xhat))   "
            "(means over the normalised axes, keepdims)"
        ),
        "spoilers": ["The input gradient, with"],
    },
    "10.2": {
        "idea": (
            "GELU is a product, x times Phi(x), and the derivative of the normal CDF Phi is the "
            "normal density phi. Use the product rule; forward kept Phi(x) (self.cdf). Two cases: "
            "when a graph of the backward pass is being recorded (is_grad_enabled()), build the "
            "gradient from Tensor operations so that it can be differentiated again "
            "(NormalCDFFunction and _normal_pdf); otherwise compute it on the raw arrays."
        ),
        "formula": (
            "grad_x = grad_out * (Phi(x) + x * phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi) "
            "(_INV_SQRT_2PI);\n"
            "recording: grad_out * (NormalCDFFunction.apply(x) + x * _normal_pdf(x)); "
            "else the same on x.data and self.cdf, returned as _const(...)"
        ),
        "spoilers": ["Its derivative, by the product rule"],
    },
    "10.3": {
        "idea": (
            "A pre-norm block keeps a residual stream x and adds two branches to it in turn: "
            "attention over a layer-normed copy of x, then the MLP over a layer-normed copy of "
            "the updated x. Each branch's output passes through dropout before it is added. "
            "The key padding mask goes to the attention."
        ),
        "formula": (
            "x = x + dropout(attn(ln1(x), key_padding_mask=key_padding_mask));\n"
            "x = x + dropout(mlp(ln2(x)));  return x"
        ),
    },
    "11.1": {
        "idea": (
            "Each position's input vector is the embedding of its character plus the embedding "
            "of its position (0 .. T-1, the same for every row of the batch, so it broadcasts). "
            "Then dropout, the blocks one after the other, and the final LayerNorm. Use the "
            "modules the constructor made (self.wte, self.wpe, self.drop, self.h, self.ln_f), so "
            "that everything stays in the graph and the embeddings get gradients."
        ),
        "formula": (
            "pos = arange(T, device=idx.device); x = drop(wte(idx) + wpe(pos))   (B, T, C);\n"
            "for each block in h: x = block(x); return ln_f(x).\n"
            "forward then applies lm_head, whose weight is wte's (the tied head)."
        ),
    },
    "11.2": {
        "idea": (
            "Adam's L2 penalty goes through the gradient, so Adam's normalisation rescales it "
            "like any gradient. AdamW instead shrinks the weight itself, before the Adam step, by "
            "a factor that depends on the step's learning rate and the group's decay. Use the "
            "group's own values (lr and weight_decay are already read from the group): a "
            "schedule changes lr, and groups without decay have weight_decay = 0."
        ),
        "formula": (
            "p <- p * (1 - lr * weight_decay), on the weight before the moments and the step "
            "(the gradient is left alone)."
        ),
    },
    "11.3": {
        "idea": (
            "Three pieces: during the warm-up the rate grows linearly and is never exactly 0 at "
            "step 0; after max_steps it stays at min_lr; in between it follows half a cosine "
            "period from lr down to min_lr."
        ),
        "formula": (
            "step < warmup: lr * (step + 1) / (warmup + 1);  step > max_steps: min_lr;\n"
            "else r = (step - warmup) / (max_steps - warmup), "
            "min_lr + (lr - min_lr) * (1 + cos(pi r)) / 2"
        ),
        "spoilers": ["The rate, step by step::"],
    },
    "11.4": {
        "idea": (
            "Temperature rescales the scores before the softmax (below 1 sharpens, above 1 "
            "flattens). Top-k gives every score below the k-th largest of its row a probability "
            "of exactly 0: a score of -inf does that. Each row has its own k-th largest; ties "
            "with it stay in. No gradient is needed: you may sort the raw array."
        ),
        "formula": (
            "logits = logits / temperature; with top_k: k = min(top_k, V), "
            "kth = sort(logits.data, last axis)[:, V - k : V - k + 1] as a Tensor (B, 1), "
            "logits = logits.masked_fill(logits < kth, -inf)"
        ),
    },
    "12.1": {
        "idea": (
            "Module.to moves each parameter's array in place, so the optimizer still holds the "
            "same Parameter objects, but its state (momentum buffers, Adam's moments) is still "
            "on the old device, in the old dtype. Before the update, bring every array of the "
            "state to the parameter's device and dtype; plain numbers (the step count) stay."
        ),
        "formula": (
            "Every array entry of the state becomes backend.asarray(entry, dtype=p.dtype, "
            "device=p.device); replace it in the dict under the same key."
        ),
    },
    "13.1": {
        "idea": (
            "Differentiate log(1 + e^x) by hand: the result is the function that squashes the "
            "LSTM's gates (chapter 8), also inside chapter 4's binary cross-entropy. "
            "Write it so that it never overflows (x = 1e4 must give 1, x = -1e4 must give 0), "
            "and with Tensor operations so that the backward can be differentiated again."
        ),
        "formula": (
            "d softplus / dx = e^x / (1 + e^x) = sigmoid(x);  "
            "grad_x = grad_out * sigmoid(x) with ops.sigmoid (stable on both sides)"
        ),
    },
    "14.1": {
        "idea": (
            "A parameter is frozen when it does not require a gradient: backward then skips it "
            "and no optimizer can move it. Do it for every parameter of the module and its "
            "children, and when freezing, forget the gradient a parameter already has."
        ),
        "formula": (
            "Loop over self.parameters() (children included) and call Tensor.requires_grad_ "
            "with the flag; when the flag is False, also set the parameter's grad to None."
        ),
    },
    "14.2": {
        "idea": (
            "The body gives one vector per position (B, T, C); a classifier needs one per window "
            "(B, C). Pool over the positions: their mean, or the last position's vector (in a "
            "causal model the only one that has seen every character). Then the Linear head."
        ),
        "formula": (
            "features = h.mean(axis=1) for pool='mean', h[:, -1] for pool='last'; "
            "return self.head(features)   (B, num_classes)"
        ),
    },
    "15.1": {
        "idea": (
            "Work on the ids' own array x with the array namespace xp and the framework's "
            "draws (backend.rand, backend.randint), which the seed fixes. One uniform draw per "
            "position chooses it (below mask_prob, and only if its id is not special); a "
            "second, independent draw per position decides what a chosen position shows. The "
            "targets keep the original id where chosen and IGNORE_INDEX elsewhere."
        ),
        "formula": (
            "candidate = x differs from every special id; chosen = candidate & (u1 < mask_prob);"
            "\ntargets = where(chosen, x, IGNORE_INDEX);\n"
            "inputs = where(chosen & (u2 < 0.8), mask_id, "
            "where(chosen & (0.8 <= u2 < 0.9), random regular id, x)), the random regular ids "
            "being regular[k] for k drawn uniformly from 0..len(regular)-1 at every position."
        ),
    },
    "15.2": {
        "idea": (
            "Every position is one classification row: flatten the logits to (B*T, V) and the "
            "targets to (B*T,). A position that was not chosen must add nothing to the sum and "
            "nothing to the count that the mean divides by; chapter 4's cross-entropy already "
            "has an argument that skips a target value."
        ),
        "formula": (
            "S = {i : targets_i != ignore_index};\n"
            "loss = -(1 / |S|) * sum over i in S of log_softmax(logits_i)[targets_i]\n"
            "(F.cross_entropy on the flattened rows with ignore_index=ignore_index)"
        ),
    },
}
