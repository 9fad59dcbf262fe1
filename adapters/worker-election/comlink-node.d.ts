// comlink ships its Node endpoint adapter without a package "exports" map; this names its types.
declare module 'comlink/dist/esm/node-adapter.mjs' {
  export { default } from 'comlink/dist/esm/node-adapter'
}
