/*
 * flame.c: `gortprof flame`: flame graphs as hand-written SVG, and as an
 * HTML page whose script zooms on click, searches and resets.
 *
 * The call tree is built from the root: each kept sample walks its frames
 * outermost first and adds its value to every tree node on the path; tree
 * nodes are found by a hash of (parent, function node), so building is
 * linear in the frames.  Layout is an explicit-stack walk (no recursion, so
 * a hostile 100,000-frame stack cannot overflow the C stack), children in
 * name order as flame graphs usually are; frames narrower than 0.05% of the
 * total are left out with their subtrees, which bounds the output.
 *
 * Each frame is <g class="f" data-n=NAME data-x=X data-w=W data-d=DEPTH>
 * with X and W fractions of the total, a <title> tooltip (value, percent,
 * sample count), a rect and a label.  The page's script only rescales those
 * attributes, so the SVG alone is a complete picture and the HTML adds
 * behaviour.  `#selftest` in the page's URL makes the script click the
 * widest frame narrower than the root, check that it fills the width and
 * that a frame beside it is hidden, reset,, run a search, and write the
 * outcome into <pre id="selftest"> (what the Chromium test reads).
 *
 * Rejected: a canvas renderer (no DOM to test, no tooltips without code);
 * d3 or another library (the tool must work offline, from one file).
 */
#include "gortprof.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WIDTH 1200.0
#define FRAME_H 16
#define TOP_PAD 56

typedef struct tnode {
    uint32_t node, parent, child, sibling;
    int64_t value, count;
} tnode_t;

typedef struct tree {
    tnode_t *t;
    uint32_t n, cap;
    uint32_t *slot;
    size_t mask;
    uint32_t maxdepth;
    int64_t min; /* smallest nonzero |value| of a kept sample */
} tree_t;

static uint32_t tree_child(tree_t *tr, uint32_t parent, uint32_t node)
{
    uint64_t h = ((uint64_t)parent * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)node * 0xff51afd7ed558ccdull);
    h ^= h >> 29;
    for (size_t i = h & tr->mask;; i = (i + 1) & tr->mask) {
        uint32_t s = tr->slot[i];
        if (!s) {
            uint32_t k = tr->n++;
            tr->t[k] = (tnode_t){node, parent, UINT32_MAX, tr->t[parent].child, 0, 0};
            tr->t[parent].child = k;
            tr->slot[i] = k + 1;
            return k;
        }
        tnode_t *c = &tr->t[s - 1];
        if (c->parent == parent && c->node == node)
            return s - 1;
    }
}

static int tree_build(const gp_view_t *v, tree_t *tr)
{
    const gort__pprof_t *p = v->p;
    size_t cap;
    size_t frames = gp_kept_frames(v, &cap);
    if (frames >= UINT32_MAX / 2)
        return gp_fail("profile too large for a flame graph");
    tr->t = malloc(frames * sizeof *tr->t);
    tr->slot = calloc(cap, sizeof *tr->slot);
    tr->mask = cap - 1;
    tr->maxdepth = 0;
    tr->min = 0;
    if (!tr->t || !tr->slot) {
        free(tr->t);
        free(tr->slot);
        return gp_fail("out of memory");
    }
    tr->t[0] = (tnode_t){UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX, 0, 0};
    tr->n = 1;
    for (size_t i = 0; i < p->nsample; i++) {
        const gort__pprof_sample_t *s = &p->sample[i];
        if (!v->keep[i])
            continue;
        int64_t x = s->value[v->vi];
        x = x < 0 ? -x : x;
        if (x && (!tr->min || x < tr->min))
            tr->min = x;
        int64_t cnt = v->count_vi >= 0 ? s->value[v->count_vi] : 1;
        uint32_t cur = 0, depth = 0;
        tr->t[0].value += x;
        tr->t[0].count += cnt;
        for (uint32_t j = s->nloc; j-- > 0;) {
            uint32_t l = s->loc[j];
            for (uint32_t f = v->loc_off[l + 1]; f-- > v->loc_off[l];) {
                cur = tree_child(tr, cur, v->frame[f].node);
                tr->t[cur].value += x;
                tr->t[cur].count += cnt;
                depth++;
            }
        }
        if (depth > tr->maxdepth)
            tr->maxdepth = depth;
    }
    return 0;
}

static const gp_view_t *cmp_v;
static const tree_t *cmp_tr;

static int cmp_children(const void *a, const void *b)
{
    const tnode_t *x = &cmp_tr->t[*(const uint32_t *)a], *y = &cmp_tr->t[*(const uint32_t *)b];
    return strcmp(cmp_v->node[x->node].name, cmp_v->node[y->node].name);
}

/* Warm colours by name hash, as flame graphs traditionally use. */
static void colour(const char *name, char *buf, size_t n)
{
    uint32_t h = 2166136261u;
    for (const char *s = name; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    unsigned r = 205 + h % 50, g = 80 + (h >> 8) % 150, b = (h >> 16) % 55;
    snprintf(buf, n, "rgb(%u,%u,%u)", r, g, b);
}

static const char flame_css[] =
    "svg{font-family:Verdana,sans-serif;font-size:12px}"
    ".f rect{stroke:#fff;stroke-width:0.5;rx:2}.f text{pointer-events:none;fill:#000}"
    ".f:hover rect{stroke:#000;stroke-width:1}.f{cursor:pointer}.f.hit rect{fill:rgb(230,0,230)}"
    ".hidden{display:none}";

static const char flame_js[] =
    "(function(){\n"
    "var svg=document.getElementById('flame');if(!svg)return;\n"
    "var W=" "1200" ",PAD=10,frames=[].slice.call(svg.querySelectorAll('g.f'));\n"
    "var zoomed=null;\n"
    "function fit(g,x,w){var r=g.querySelector('rect'),t=g.querySelector('text');\n"
    " var px=PAD+x*(W-2*PAD),pw=w*(W-2*PAD);r.setAttribute('x',px.toFixed(2));\n"
    " r.setAttribute('width',Math.max(0,pw-0.5).toFixed(2));t.setAttribute('x',(px+3).toFixed(2));\n"
    " var n=g.getAttribute('data-n'),c=Math.floor((pw-6)/7);\n"
    " t.textContent=c<3?'':(n.length<=c?n:n.substring(0,c-2)+'..');}\n"
    "function zoom(g){zoomed=g;var fx=+g.getAttribute('data-x'),fw=+g.getAttribute('data-w'),\n"
    " fd=+g.getAttribute('data-d');frames.forEach(function(h){var x=+h.getAttribute('data-x'),\n"
    " w=+h.getAttribute('data-w'),d=+h.getAttribute('data-d');var e=1e-9;\n"
    " if(d<fd&&x<=fx+e&&x+w>=fx+fw-e){h.classList.remove('hidden');fit(h,0,1);}\n"
    " else if(d>=fd&&x>=fx-e&&x+w<=fx+fw+e){h.classList.remove('hidden');fit(h,(x-fx)/fw,w/fw);}\n"
    " else h.classList.add('hidden');});\n"
    " var rs=document.getElementById('reset');if(rs)rs.disabled=false;}\n"
    "function reset(){zoomed=null;frames.forEach(function(h){h.classList.remove('hidden');\n"
    " fit(h,+h.getAttribute('data-x'),+h.getAttribute('data-w'));});}\n"
    "function search(q){var re=null,m=0;try{re=q?new RegExp(q):null}catch(e){re=null}\n"
    " var cov=[];frames.forEach(function(h){var hit=re&&re.test(h.getAttribute('data-n'));\n"
    " h.classList.toggle('hit',!!hit);if(hit)cov.push([+h.getAttribute('data-x'),+h.getAttribute('data-w')]);});\n"
    " cov.sort(function(a,b){return a[0]-b[0]||b[1]-a[1]});var end=-1;cov.forEach(function(c){\n"
    " if(c[0]>=end-1e-9){m+=c[1];end=c[0]+c[1];}else if(c[0]+c[1]>end){m+=c[0]+c[1]-end;end=c[0]+c[1];}});\n"
    " var o=document.getElementById('matched');if(o)o.textContent=re?'Matched: '+(m*100).toFixed(2)+'%':'';\n"
    " return cov.length;}\n"
    "frames.forEach(function(g){g.addEventListener('click',function(){zoom(g)});});\n"
    "var s=document.getElementById('search');if(s)s.addEventListener('input',function(){search(s.value)});\n"
    "var rs=document.getElementById('reset');if(rs)rs.addEventListener('click',reset);\n"
    "window.gortFlame={zoom:zoom,reset:reset,search:search};\n"
    "if(location.hash==='#selftest'){var out=[],best=null,other=null;\n"
    " frames.forEach(function(g){var w=+g.getAttribute('data-w');if(w<0.999&&(!best||w>\n"
    "  +best.getAttribute('data-w')))best=g;});\n"
    " if(!best)frames.forEach(function(g){if(!best&&g.getAttribute('data-d')==='1')best=g;});\n"
    " out.push('frames='+frames.length);\n"
    " if(best){var bx=+best.getAttribute('data-x'),bw=+best.getAttribute('data-w');\n"
    "  frames.forEach(function(g){var x=+g.getAttribute('data-x');if(g.getAttribute('data-d')===\n"
    "   best.getAttribute('data-d')&&(x<bx-1e-9||x>=bx+bw-1e-9))other=g;});\n"
    "  best.dispatchEvent(new MouseEvent('click',{bubbles:true}));\n"
    "  var w=+best.querySelector('rect').getAttribute('width');\n"
    "  var ok=w>W-2*PAD-2&&(!other||other.classList.contains('hidden'));\n"
    "  out.push('clicked='+best.getAttribute('data-n'));out.push('width='+w.toFixed(1));\n"
    "  out.push('hidden='+(other?other.getAttribute('data-n'):'-'));\n"
    "  out.push('zoom='+(ok?'ok':'FAIL'));reset();\n"
    "  var back=+best.querySelector('rect').getAttribute('width');\n"
    "  out.push('reset='+(back<w||bw>0.999?'ok':'FAIL'));\n"
    "  out.push('search='+search(best.getAttribute('data-n').replace(/[.*+?^${}()|[\\]\\\\]/g,'\\\\$&')));search('');}\n"
    " else out.push('zoom=FAIL no frames');\n"
    " var pre=document.getElementById('selftest');if(!pre){pre=document.createElement('pre');pre.id='selftest';\n"
    "  document.body.appendChild(pre);}pre.textContent='selftest: '+out.join(' ');}\n"
    "})();\n";

static void write_frames(const gp_view_t *v, tree_t *tr, FILE *out, double height)
{
    int64_t total = tr->t[0].value;
    if (total == 0)
        return;
    double minw = 0.0005;
    /* Explicit stack of (tree node, x fraction, depth). */
    typedef struct item {
        uint32_t t;
        double x;
        uint32_t d;
    } item_t;
    size_t cap = 1024, sp = 0;
    item_t *st = malloc(cap * sizeof *st);
    uint32_t *kids = malloc((tr->n + 1) * sizeof *kids);
    if (!st || !kids) {
        free(st);
        free(kids);
        return;
    }
    cmp_v = v;
    cmp_tr = tr;
    st[sp++] = (item_t){0, 0, 0};
    char a[64], b[64], col[32];
    while (sp) {
        item_t it = st[--sp];
        const tnode_t *tn = &tr->t[it.t];
        double w = (double)tn->value / (double)total;
        const char *name = it.t == 0 ? "root" : v->node[tn->node].name;
        double px = 10 + it.x * (WIDTH - 20), pw = w * (WIDTH - 20);
        double y = height - 10 - (it.d + 1) * FRAME_H;
        colour(name, col, sizeof col);
        fprintf(out, "<g class=\"f\" data-n=\"");
        gp_xml_escape(out, name);
        fprintf(out, "\" data-x=\"%.8f\" data-w=\"%.8f\" data-d=\"%u\" data-v=\"%lld\"><title>", it.x, w, it.d,
                (long long)tn->value);
        gp_xml_escape(out, name);
        fprintf(out, " (%s, %s", gp_fmt_value(v, tn->value, a, sizeof a), gp_fmt_pct(tn->value, total, b, sizeof b));
        if (v->count_vi >= 0)
            fprintf(out, ", %lld samples", (long long)tn->count);
        fprintf(out, ")</title><rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"%s\"/>"
                     "<text x=\"%.2f\" y=\"%.1f\">",
                px, y, pw > 0.5 ? pw - 0.5 : pw, FRAME_H - 1, col, px + 3, y + FRAME_H - 4);
        int fit = (int)((pw - 6) / 7);
        size_t len = strlen(name);
        if (fit >= 3) {
            if ((int)len <= fit) {
                gp_xml_escape(out, name);
            } else {
                char *cut = strndup(name, (size_t)fit - 2);
                if (cut) {
                    gp_xml_escape(out, cut);
                    fputs("..", out);
                    free(cut);
                }
            }
        }
        fprintf(out, "</text></g>\n");
        /* Children, sorted by name, pushed in reverse so the first pops
         * first; x advances in name order. */
        uint32_t nk = 0;
        for (uint32_t c = tn->child; c != UINT32_MAX; c = tr->t[c].sibling)
            if ((double)tr->t[c].value / (double)total >= minw)
                kids[nk++] = c;
        qsort(kids, nk, sizeof *kids, cmp_children);
        if (sp + nk > cap) {
            while (sp + nk > cap)
                cap *= 2;
            item_t *ns = realloc(st, cap * sizeof *st);
            if (!ns)
                break;
            st = ns;
        }
        double x = it.x;
        double *xs = (double *)malloc((nk + 1) * sizeof *xs);
        if (!xs)
            break;
        for (uint32_t k = 0; k < nk; k++) {
            xs[k] = x;
            x += (double)tr->t[kids[k]].value / (double)total;
        }
        for (uint32_t k = nk; k-- > 0;)
            st[sp++] = (item_t){kids[k], xs[k], it.d + 1};
        free(xs);
    }
    free(st);
    free(kids);
}

int gp_flame_write(const gp_view_t *v, FILE *out, bool html, const char *title)
{
    tree_t tr;
    int rc = tree_build(v, &tr);
    if (rc)
        return rc;
    gp_choose_unit((gp_view_t *)v, tr.min);
    uint32_t depth = tr.maxdepth + 1;
    double height = TOP_PAD + (double)depth * FRAME_H + 20;
    if (html) {
        fprintf(out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
        gp_xml_escape(out, title);
        fprintf(out, "</title><style>body{margin:8px;font-family:Verdana,sans-serif}%s"
                     "#bar{margin:4px 0}#matched{margin-left:1em}</style></head><body>\n"
                     "<div id=\"bar\"><input id=\"search\" placeholder=\"search (regex)\" size=\"30\"> "
                     "<button id=\"reset\">reset zoom</button><span id=\"matched\"></span></div>\n",
                flame_css);
    }
    fprintf(out, "%s<svg id=\"flame\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" "
                 "viewBox=\"0 0 %d %.0f\">\n<style>%s</style>\n"
                 "<rect x=\"0\" y=\"0\" width=\"100%%\" height=\"100%%\" fill=\"#fdfdf6\"/>\n"
                 "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"17\">",
            html ? "" : "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", (int)WIDTH, height, (int)WIDTH, height,
            flame_css, (int)WIDTH / 2);
    gp_xml_escape(out, title);
    char a[64];
    fprintf(out, "</text>\n<text x=\"%d\" y=\"44\" text-anchor=\"middle\" fill=\"#666\">%s: %s total",
            (int)WIDTH / 2, gp_type_name(v), gp_fmt_value(v, tr.t[0].value, a, sizeof a));
    if (v->filters[0]) {
        fputs(", filters:", out);
        for (const char *s = v->filters; *s; s++)
            if (*s == '\n')
                fputc(';', out);
            else if (!(*s == ' ' && s[1] == ' '))
                gp_xml_escape(out, (char[]){*s, 0});
    }
    fprintf(out, "</text>\n");
    write_frames(v, &tr, out, height);
    fprintf(out, "</svg>\n");
    if (html)
        fprintf(out, "<script>\n%s</script>\n</body></html>\n", flame_js);
    free(tr.t);
    free(tr.slot);
    return 0;
}

int gp_cmd_flame(const gp_opts_t *o, const char *path)
{
    if (!o->output)
        return gp_fail("flame: give the output file with -o OUT.svg or -o OUT.html");
    size_t n = strlen(o->output);
    bool html = n > 5 && (!strcmp(o->output + n - 5, ".html") || !strcmp(o->output + n - 4, ".htm"));
    gp_view_t v;
    int rc = gp_view_open(&v, path, o);
    if (rc)
        return rc;
    /* Written whole or not at all (prof/wholefile.c): a full disk must not
     * leave a graph that opens but is cut short, nor spoil an older one. */
    bool to_stdout = !strcmp(o->output, "-");
    gort_wfile_t w = {.fd = -1};
    int err = to_stdout ? 0 : gort__wfile_open(&w, o->output);
    int dupfd = err < 0 ? -1 : to_stdout ? -1 : dup(w.fd);
    FILE *out = to_stdout ? stdout : dupfd >= 0 ? fdopen(dupfd, "w") : NULL;
    if (!out) {
        if (!err)
            err = -errno;
        if (dupfd >= 0)
            close(dupfd);
        if (w.fd >= 0)
            (void)gort__wfile_commit(&w, err);
        gp_view_close(&v);
        return gp_fail("%s: cannot create: %s", o->output, strerror(-err));
    }
    const char *slash = strrchr(path, '/');
    rc = gp_flame_write(&v, out, html, slash ? slash + 1 : path);
    if (!to_stdout) {
        err = fflush(out) != 0 ? -errno : ferror(out) ? -EIO : 0;
        if (fclose(out) != 0 && !err)
            err = -errno;
        err = gort__wfile_commit(&w, rc ? -ECANCELED : err);
        if (err && !rc)
            rc = gp_fail("%s: not written: %s", o->output, strerror(-err));
    }
    gp_view_close(&v);
    return rc;
}
