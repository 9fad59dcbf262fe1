// A plain production build: Vite's defaults (minified), nothing kept by name.
export default { build: { target: 'es2022' }, logLevel: 'warn' }
