document.querySelector('h1').title = `rendered at ${new Date().toISOString()}`
