/* LSTM Lens: the prediction film's frames, built in the browser. The server sends the figure
   without its frames and, under "film", the (examples x frames) grids they are cut from
   (dashboard/figures/film.py: film_source); each frame carries every path so far, so the frames
   would be about ten times the grids. This is film.py's expand, step for step: frame k draws
   columns 0..k of each example's path (one NaN after each run of points), the heads at column k
   with [id, p] to hover and click, and the selected example's own path; the traces open on the
   last frame. A figure without a film (a message) is shown as it is. */
(function () {
    const TYPES = {f4: Float32Array, f8: Float64Array, i1: Int8Array, u1: Uint8Array, i2: Int16Array,
                   u2: Uint16Array, i4: Int32Array, u4: Uint32Array};

    /* A typed-array spec ({dtype, bdata}) as its typed array; a plain list as it is. */
    function untyped(spec) {
        if (!spec || Array.isArray(spec) || !spec.bdata) { return spec || []; }
        const text = atob(spec.bdata);
        const bytes = new Uint8Array(text.length);
        for (let i = 0; i < text.length; i++) { bytes[i] = text.charCodeAt(i); }
        return new TYPES[spec.dtype](bytes.buffer);
    }

    function pathArrays(xs, ys, colour, nExamples, nFrames, columns) {
        const size = nExamples * (columns + 1);
        const px = new Float32Array(size), py = new Float32Array(size), pc = new Int16Array(size);
        let n = 0;
        for (let e = 0; e < nExamples; e++) {
            let afterPoint = false;
            for (let j = 0; j <= columns; j++) {
                const x = j < columns ? xs[e * nFrames + j] : NaN;
                if (!Number.isNaN(x)) {
                    px[n] = x; py[n] = ys[e * nFrames + j]; pc[n] = colour[e]; n++;
                    afterPoint = true;
                } else if (afterPoint) {
                    px[n] = NaN; py[n] = NaN; pc[n] = colour[e]; n++;
                    afterPoint = false;
                }
            }
        }
        return [px.slice(0, n), py.slice(0, n), pc.slice(0, n)];
    }

    function frameData(film, xs, ys, ps, colour, nExamples, nFrames, k) {
        const [px, py, pc] = pathArrays(xs, ys, colour, nExamples, nFrames, k + 1);
        const hx = new Float32Array(nExamples), hy = new Float32Array(nExamples), custom = new Array(nExamples);
        for (let e = 0; e < nExamples; e++) {
            const at = e * nFrames + k;
            hx[e] = xs[at]; hy[e] = ys[at];
            const p = ps ? ps[at] : NaN;
            custom[e] = [film.ids[e], Number.isNaN(p) ? null : Math.round(p * 1000) / 1000];
        }
        const traces = [{type: "scattergl", x: px, y: py, marker: {color: pc}},
                        {type: "scattergl", x: hx, y: hy, customdata: custom}];
        if (film.mark !== null && film.mark !== undefined) {
            const row = film.mark * nFrames;
            const sizes = new Array(k + 1).fill(6);
            sizes[k] = 22;
            traces.push({type: "scattergl", x: xs.slice(row, row + k + 1), y: ys.slice(row, row + k + 1),
                         marker: {size: sizes}});
        }
        return traces;
    }

    function expand(source) {
        const film = source && source.film;
        if (!film) { return source || {}; }
        const xs = untyped(film.x), ys = untyped(film.y), colour = untyped(film.colour);
        const ps = film.p ? untyped(film.p) : null;
        const nExamples = film.ids.length, nFrames = film.names.length;
        const marked = film.mark !== null && film.mark !== undefined;
        const drawn = marked ? [0, 1, 2] : [0, 1];
        const frames = film.names.map(function (name, k) {
            return {data: frameData(film, xs, ys, ps, colour, nExamples, nFrames, k), traces: drawn, name: name};
        });
        const last = frames[frames.length - 1].data;
        const data = source.data.map(function (trace) { return Object.assign({}, trace); });
        Object.assign(data[0], {x: last[0].x, y: last[0].y,
                                marker: Object.assign({}, data[0].marker, {color: last[0].marker.color})});
        Object.assign(data[1], {x: last[1].x, y: last[1].y, customdata: last[1].customdata});
        if (marked) {
            Object.assign(data[2], {x: last[2].x, y: last[2].y,
                                    marker: Object.assign({}, data[2].marker, {size: last[2].marker.size})});
        }
        return {data: data, layout: source.layout, frames: frames};
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.lens = Object.assign({}, window.dash_clientside.lens, {film: expand});
})();
