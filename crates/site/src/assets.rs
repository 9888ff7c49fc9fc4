//! The stylesheet and the one script, served from `/site/` so the
//! Content-Security-Policy can forbid inline script and style.

/// `/site/site.css`: one column on phones, cards that wrap, long digests
/// and commands that break instead of widening the page.
pub const CSS: &str = r#":root{--fg:#1b1f24;--muted:#4b5563;--bg:#fff;--card:#f6f8fa;--line:#d0d7de;--link:#0550ae;--ok:#116329;--bad:#a40e26;--warn:#7a4d00}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);overflow-wrap:anywhere}
header{background:#24292f;padding:.6rem 1rem}
header nav{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;max-width:72rem;margin:0 auto}
header a{color:#fff;text-decoration:none}
header a:hover,header a:focus{text-decoration:underline}
.brand{font-weight:700}
main{max-width:72rem;margin:0 auto;padding:1rem}
footer{max-width:72rem;margin:0 auto;padding:1rem;color:var(--muted)}
a{color:var(--link)}
h1{font-size:1.7rem;margin:.4rem 0 1rem}
h2{font-size:1.3rem;margin:1.6rem 0 .6rem}
h3{font-size:1.05rem;margin:0 0 .3rem}
.lead{font-size:1.1rem}
.cards{list-style:none;padding:0;margin:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,20rem),1fr));gap:.8rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.8rem;min-width:0}
.card p{margin:.2rem 0}
.meta{color:var(--muted)}
.sig{font-weight:600}
.verified{color:var(--ok)}
.unverified{color:var(--bad)}
.unsigned{color:var(--warn)}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
code{overflow-wrap:anywhere;word-break:break-word}
pre{background:var(--card);border:1px solid var(--line);padding:.6rem;white-space:pre-wrap;overflow-wrap:anywhere}
.cmd{display:flex;gap:.4rem;align-items:flex-start;background:#eef1f4;border:1px solid var(--line);border-radius:4px;padding:.3rem .5rem;margin:.3rem 0}
.cmd code{flex:1;min-width:0}
button{font:inherit;font-size:.85em;padding:.1rem .5rem;border:1px solid var(--line);border-radius:4px;background:#fff;color:var(--fg);cursor:pointer}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.1rem .8rem;margin:.3rem 0}
dt{color:var(--muted)}
dd{margin:0;min-width:0}
.filter{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin-bottom:1rem}
.filter input{font:inherit;padding:.3rem .5rem;border:1px solid #6e7781;border-radius:4px;min-width:0;flex:1 1 12rem}
.plain{padding-left:1.2rem}
.diff{list-style:none;padding:0;margin:.3rem 0}
.add{color:var(--ok)}.del{color:var(--bad)}.chg{color:var(--warn)}
.packages{columns:16rem;padding-left:1.2rem}
.help img{max-width:100%}
.help table{display:block;overflow-x:auto}
"#;

/// `/site/site.js`: shows the copy buttons (hidden without script) and
/// copies their `data-copy` text.
pub const JS: &str = r#""use strict";
document.querySelectorAll("button.copy").forEach(function (b) {
  if (!navigator.clipboard) return;
  b.hidden = false;
  b.addEventListener("click", function () {
    navigator.clipboard.writeText(b.getAttribute("data-copy")).then(function () {
      b.textContent = "copied";
      setTimeout(function () { b.textContent = "copy"; }, 1500);
    });
  });
});
"#;
