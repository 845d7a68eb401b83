// Orb example guest in JavaScript (built with componentize-js).
// World-level exports are plain exported functions (kebab-case → camelCase).

export function greet(name) {
  return `Hello, ${name}! (from JavaScript)`;
}

export function sum(values) {
  let total = 0;
  for (const v of values) total += v;
  return total;
}
