/* LSTM Lens: a box or lasso selection on a figure becomes the set of examples it covers, in the
   browser. The selection's points (tens of thousands on the paths: every step of every path)
   never travel to the server, only the example ids (each point's customdata, or its first
   element), sorted and each once. An empty selection keeps the set: "Clear chosen set" drops it. */
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.lens = Object.assign({}, window.dash_clientside.lens, {
    chosen: function (selection, current) {
        const noUpdate = window.dash_clientside.no_update;
        if (!selection || !Array.isArray(selection.points)) { return noUpdate; }
        const found = new Set();
        for (const point of selection.points) {
            let id = point ? point.customdata : null;
            if (Array.isArray(id)) { id = id.length ? id[0] : null; }
            const number = Number(id);
            if (id !== null && id !== "" && Number.isInteger(number) && number >= 0) { found.add(number); }
        }
        if (!found.size) { return noUpdate; }
        const ids = Array.from(found).sort(function (a, b) { return a - b; });
        if (Array.isArray(current) && current.length === ids.length && current.every(function (v, i) { return v === ids[i]; })) {
            return noUpdate;
        }
        return ids;
    }
});
